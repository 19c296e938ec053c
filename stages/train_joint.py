"""Stages train_pretrained and train_oracle: one network regressing tasks from the whole distribution.

``--method pretrained`` sees x only; ``--method oracle`` also gets the true amplitude and phase as inputs.
Each reads its own params section (``train_pretrained`` / ``train_oracle``).
"""

from baselines.joint import fit_joint_baseline
from reml import stage
from reml.checkpoint import save_checkpoint
from reml.config import to_dict
from reml.nets import MLP, input_dim
from reml.tasks import load_taskset

INPUTS = {"pretrained": "x", "oracle": "x+task_params"}


def run(args, params):
    cfg = getattr(params, f"train_{args.method}")
    inputs = INPUTS[args.method]
    val_tasks = load_taskset(args.val_tasks)
    distribution = stage.sinusoid_distribution(params.sinusoid)
    model = MLP((input_dim(inputs, 1, len(distribution.param_names)), *params.model.hidden, 1))
    config = to_dict(cfg) | {"model": to_dict(params.model), "sinusoid": to_dict(params.sinusoid)}
    ckpt, log = fit_joint_baseline(args.method, model, distribution, inputs, cfg, val_tasks, params.adaptation, config)
    save_checkpoint(args.out, ckpt)
    log.write(args.log_out)
    print(f"{args.method}: final train MSE {log.loss[-1]:.4f}, fine-tuning step sizes {ckpt.step_sizes} (K -> lr)")
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--method", choices=sorted(INPUTS), required=True)
    p.add_argument("--val-tasks", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--log-out", required=True)
    stage.main(run, p)
