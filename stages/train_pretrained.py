"""Stage train_pretrained (a matrix over pretrained / pretrained_matched x replicates): one network
regressing tasks from the whole distribution, fine-tuned at test with a step size tuned on validation
tasks (Finn et al.'s pretrained baseline); `pretrained_matched` sees as many tasks as one REML run."""

from reml.core import stage
from reml.families.sinusoid import baselines, config


def run(args, params: config.SinusoidParams) -> None:
    stage.matrix_item("--method", args.method, ("pretrained", "pretrained_matched"), "train_pretrained")
    stage.matrix_item("--replicate", args.replicate, params.replicates, "replicates")
    baselines.train_joint(args.method, params, args.val_tasks, args.out, args.log_out, args.replicate,
                          device=args.device)  # fmt: skip
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "method", "val_tasks", "out", "log_out", replicate=int)
