"""Stage train_pretrained: one network regressing tasks from the whole distribution, fine-tuned at
test with a step size tuned on validation tasks (Finn et al.'s pretrained baseline)."""

from reml.core import stage
from reml.families.sinusoid import baselines, config


def run(args, params: config.SinusoidParams) -> None:
    baselines.train_joint("pretrained", params, args.val_tasks, args.out, args.log_out, device=args.device)
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "val_tasks", "out", "log_out")
