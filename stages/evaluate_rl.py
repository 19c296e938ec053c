"""Stage evaluate_rl: score every RL method on the same held-out test tasks of each family.

For each family: ``n_test`` tasks from the ``test`` stream (no method trains on it); every method
(scratch: a seeded random policy; pretrained, oracle, maml_trpo: their checkpoints) goes through
:func:`reml.rl.harness.adaptation_returns`: episodes, mean return, one REINFORCE step on those episodes,
for S steps (Finn: step size 0.1, then 0.05). The action noise and reset seeds are the same for every
method (common random numbers). Writes ``<family>.<method>.return_step<S>`` / ``ci95_step<S>``.
"""

import math
from pathlib import Path

import pandas as pd

from reml import stage
from reml.io import write_json, write_text
from reml.rl.checkpoint import load_policy
from reml.rl.config import METHODS, TRAINED, rl_config
from reml.rl.harness import adaptation_returns
from reml.rl.sampler import Sampler
from reml.seeding import generator
from reml.tasks.rl import rl_family


def producing_stage(method: str, family: str) -> str:
    return f"train_maml_trpo@{family}" if method == "maml_trpo" else f"train_rl_ppo@{method}-{family}"


def _finite(value) -> float | None:
    """Rounded for the metrics JSON; None (null) if a return is not finite."""
    v = float(value)
    return round(v, 4) if math.isfinite(v) else None


def run(args, params):
    cfg = rl_config(params)
    ev = cfg.evaluate
    models = Path(args.models_dir)
    # Every checkpoint is read and checked before any rollout.
    checkpoints = {
        (m, f): load_policy(models / f"{m}-{f}.safetensors", producing_stage(m, f), m, f)
        for f in cfg.run for m in TRAINED
    }  # fmt: skip
    steps = len(ev.step_sizes)
    metrics, curves, methods = {}, {"step": list(range(steps + 1))}, {}
    for name in cfg.run:
        family, budget = rl_family(name), cfg.family(name)
        tasks = family.sample_tasks(ev.n_test, ev.seed, stream="test")
        oracle = checkpoints[("oracle", name)]
        plain = checkpoints[("pretrained", name)].policy
        starts = {"scratch": (plain, plain.init(generator(ev.seed, f"rl/scratch/{name}")), False)}
        starts |= {m: (checkpoints[(m, name)].policy, checkpoints[(m, name)].params, m == "oracle") for m in TRAINED}
        assert oracle.with_task
        n_envs = min(cfg.sampler.n_envs, ev.n_test * budget.test_rollouts)
        with Sampler(family, n_envs, cfg.sampler.workers) as sampler:
            for method in METHODS:
                policy, start, with_task = starts[method]
                rng = generator(ev.seed, f"rl/evaluate/{name}")  # the same noise for every method
                curve = adaptation_returns(policy, start, tasks, sampler, ev.step_sizes, budget.test_rollouts,
                                           cfg.gamma, rng, with_task=with_task)  # fmt: skip
                leaves = {f"return_step{s}": _finite(curve.mean[s]) for s in range(steps + 1)}
                leaves |= {f"ci95_step{s}": _finite(curve.ci95[s]) for s in range(steps + 1)}
                metrics.setdefault(name, {})[method] = leaves
                curves[f"{name}.{method}"] = [round(float(v), 4) for v in curve.mean]
                curves[f"{name}.{method}.ci95"] = [round(float(v), 4) for v in curve.ci95]
                training = checkpoints[(method, name)].config if method in TRAINED else {}
                methods.setdefault(name, {})[method] = {"test_rollouts": budget.test_rollouts, "training": training}
                print(f"{name:13s} {method:10s} return " + " ".join(f"{float(v):8.2f}" for v in curve.mean))
    write_json(args.metrics_out, metrics)
    write_text(args.curves_out, pd.DataFrame(curves).to_csv(index=False))
    write_json(args.methods_out, {"n_test": ev.n_test, "step_sizes": list(ev.step_sizes), "gamma": cfg.gamma,
                                  "families": methods})  # fmt: skip
    stage.wrote(args.metrics_out, args.curves_out, args.methods_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--metrics-out", required=True)
    p.add_argument("--curves-out", required=True)
    p.add_argument("--methods-out", required=True)
    stage.main(run, p)
