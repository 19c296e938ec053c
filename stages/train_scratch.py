"""Stage train_scratch: the `scratch` baseline, a random initialisation with a tuned fine-tuning step size."""

from reml.core import stage
from reml.core.tasks import load_taskset
from reml.families.sinusoid import baselines, config
from reml.families.sinusoid.checkpoint import save_checkpoint


def run(args, params: config.SinusoidParams) -> None:
    val_tasks = load_taskset(args.val_tasks)
    ckpt = baselines.scratch(params, val_tasks, device=args.device)
    save_checkpoint(args.out, ckpt)
    print(f"scratch: fine-tuning step sizes {ckpt.step_sizes} (K -> lr, tuned on {len(val_tasks)} validation tasks)")
    stage.wrote(args.out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "val_tasks", "out")
