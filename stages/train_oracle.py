"""Stage train_oracle (a matrix over replicates): the pretrained network given the true amplitude and
phase as extra inputs; its un-adapted error is the floor any method could reach."""

from reml.core import stage
from reml.families.sinusoid import baselines, config


def run(args, params: config.SinusoidParams) -> None:
    stage.matrix_item("--replicate", args.replicate, params.replicates, "replicates")
    baselines.train_joint("oracle", params, args.val_tasks, args.out, args.log_out, args.replicate,
                          device=args.device)  # fmt: skip
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "val_tasks", "out", "log_out", replicate=int)
