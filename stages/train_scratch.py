"""Stage train_scratch: the `scratch` baseline, a random initialisation with a tuned fine-tuning step size."""

from baselines.tuned import tuned_checkpoint
from reml import stage
from reml.checkpoint import save_checkpoint
from reml.config import to_dict
from reml.nets import MLP
from reml.seeding import generator
from reml.tasks import load_taskset


def run(args, params):
    val_tasks = load_taskset(args.val_tasks)
    model = MLP((1, *params.model.hidden, 1))
    init = model.init(generator(params.train_scratch.seed, "scratch/init"))
    config = to_dict(params.train_scratch) | {"model": to_dict(params.model)}
    ckpt = tuned_checkpoint("scratch", model, init, "x", val_tasks, params.adaptation, config)
    save_checkpoint(args.out, ckpt)
    print(f"scratch: fine-tuning step sizes {ckpt.step_sizes} (K -> lr, tuned on {len(val_tasks)} validation tasks)")
    stage.wrote(args.out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--val-tasks", required=True)
    p.add_argument("--out", required=True)
    stage.main(run, p)
