"""Stage train_scratch (a matrix over scratch / scratch_deep x replicates): a random initialisation with a
tuned fine-tuning step size; `scratch_deep` has REML's depth."""

from reml.core import stage
from reml.core.tasks import load_taskset
from reml.families.sinusoid import baselines, config
from reml.families.sinusoid.checkpoint import save_checkpoint


def run(args, params: config.SinusoidParams) -> None:
    stage.matrix_item("--method", args.method, config.SCRATCH_METHODS, "train_scratch")
    stage.matrix_item("--replicate", args.replicate, params.replicates, "replicates")
    val_tasks = load_taskset(args.val_tasks)
    ckpt = baselines.scratch(params, val_tasks, args.method, args.replicate, device=args.device)
    save_checkpoint(args.out, ckpt)
    print(f"{args.method} (replicate {args.replicate}): fine-tuning step sizes {ckpt.step_sizes} "
          f"(K -> lr, tuned on {len(val_tasks)} validation tasks)")  # fmt: skip
    stage.wrote(args.out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "method", "val_tasks", "out", replicate=int)
