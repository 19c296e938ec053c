"""Stage train_mixed: train one run of a method on the mixture of task families (research question 4;
reml/families/sinusoid/mixed.py). One item of the DVC matrix train_mixed.methods x replicates; the output
directory is written under a temporary name and renamed when complete."""

from reml.core import stage
from reml.core.io import atomic_dir, write_text
from reml.families.sinusoid import config, mixed


def run(args, params: config.SinusoidParams) -> None:
    stage.matrix_item("--method", args.method, params.train_mixed.methods, "train_mixed.methods")
    stage.matrix_item("--replicate", args.replicate, params.replicates, "replicates")
    with atomic_dir(args.out) as directory:
        log = mixed.train(params, args.method, args.replicate, directory, device=args.device)
        write_text(args.log_out, log.to_csv(index=False))
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "method", "out", "log_out", replicate=int)
