"""Stage evaluate_rl: score every RL method on the same held-out test tasks of each family.

For each family: ``n_test`` tasks from the ``test`` stream (no method trains on it); every method
(scratch: a seeded random policy; pretrained, oracle, maml_trpo: their checkpoints; REML: the policy its
agent composes for each task from the task's probe rollouts) goes through
:func:`reml.rl.harness.adaptation_returns`: episodes, mean return, one REINFORCE step on those episodes,
for S steps (Finn: step size 0.1, then 0.05). The action noise and reset seeds are the same for every
method (common random numbers), so methods are also compared task by task: the paired differences
after each step, with their 95% CI, go to ``methods.json``. Writes ``<family>.<method>.return_step<S>``
/ ``ci95_step<S>``.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from reml import stage
from reml.harness import ci95
from reml.io import ArtifactError, write_json, write_text
from reml.nets import Params
from reml.rl.checkpoint import load_policy
from reml.rl.compose import load_rl_composer
from reml.rl.config import TRAINED, rl_config
from reml.rl.harness import adaptation_returns
from reml.rl.policy import GaussianPolicy
from reml.rl.sampler import Sampler
from reml.seeding import generator
from reml.tasks.rl import rl_family


def producing_stage(method: str, family: str) -> str:
    if method == "maml_trpo":
        return f"train_maml_trpo@{family}"
    if method in TRAINED:
        return f"train_rl_ppo@{method}-{family}"
    return f"train_reml_rl@{family}"


def _finite(value) -> float | None:
    """Rounded for the metrics JSON; None (null) if a return is not finite."""
    v = float(value)
    return round(v, 4) if math.isfinite(v) else None


def _check_fits(path: Path, obs_dim: int, act_dim: int, family, with_task: bool) -> None:
    env = family.make_env()
    expected = (
        env.observation_space.shape[0] + (len(family.param_names) if with_task else 0),
        env.action_space.shape[0],
    )
    env.close()
    if (obs_dim, act_dim) != expected:
        raise ArtifactError(f"{path}: a policy for observations of {obs_dim} and actions of {act_dim}, but "
                            f"{family.name} needs {expected[0]} and {expected[1]}")  # fmt: skip


def load_methods(models: Path, cfg, name: str) -> dict:
    """Every trained method's checkpoint for family ``name``, checked against the family."""
    family, reml = rl_family(name), cfg.reml.agent
    out = {}
    for method in TRAINED:
        path = models / f"{method}-{name}.safetensors"
        ckpt = load_policy(path, producing_stage(method, name), method, name)
        if ckpt.with_task != (method == "oracle"):
            raise ArtifactError(f"{path}: with_task is {ckpt.with_task}, but only the oracle reads the task; "
                                f"rerun `dvc repro {producing_stage(method, name)}`")  # fmt: skip
        _check_fits(path, ckpt.policy.obs_dim, ckpt.policy.act_dim, family, ckpt.with_task)
        out[method] = ckpt
    path = models / f"{reml}-{name}.safetensors"
    composer = load_rl_composer(path, producing_stage(reml, name), reml, family)
    _check_fits(path, composer.policy.obs_dim, composer.policy.act_dim, family, False)
    out[reml] = composer
    return out


def paired(per_task: dict[str, torch.Tensor], method: str, other: str) -> dict:
    """Mean and 95% CI over tasks of method − other after each step (the same tasks and noise)."""
    diff = per_task[method] - per_task[other]
    return {"mean": [_finite(v) for v in diff.mean(0)], "ci95": [_finite(v) for v in ci95(diff)]}


@dataclass(frozen=True)
class Start:
    """Where a method's test-time fine-tuning starts on the test tasks."""

    policy: GaussianPolicy
    params: Params
    with_task: bool  # the oracle reads the task parameters
    per_task: bool  # params stacked per task (REML composes one policy per task)
    training: dict  # the training budget, for methods.json
    extra: dict = field(default_factory=dict)


def compositions(layers: list[list[int]], tasks) -> list[dict]:
    """Each distinct composition, how many test tasks got it, and their mean task parameters (read after
    composing, for the report only: the agent never sees them)."""
    out = []
    for chosen in sorted({tuple(x) for x in layers}):
        rows = [i for i, x in enumerate(layers) if tuple(x) == chosen]
        mean = tasks[rows].mean(axis=0)
        out.append({"layers": list(chosen), "tasks": len(rows), "mean_task": [round(float(v), 4) for v in mean]})
    return out


def starting_point(method: str, checkpoints: dict, tasks, sampler: Sampler, seed: int, name: str):
    if method == "scratch":  # a seeded random policy
        policy = checkpoints["pretrained"].policy
        return Start(policy, policy.init(generator(seed, f"rl/scratch/{name}")), False, False, {})
    if method in TRAINED:
        ckpt = checkpoints[method]
        return Start(ckpt.policy, ckpt.params, ckpt.with_task, False, ckpt.config)
    # REML: each task's policy is composed from its probe rollouts (as many as in training; their own
    # noise stream)
    composer = checkpoints[method]
    params, layers, invalid = composer.compose(tasks, sampler, generator(seed, f"rl/evaluate/{name}/probe"))
    extra = {"probe_rollouts": composer.probe_rollouts, "invalid_rate": round(invalid, 4),
             "distinct_policies": len({tuple(x) for x in layers}),
             "compositions": compositions(layers, tasks)}  # fmt: skip
    return Start(composer.policy, params, False, True, composer.config, extra)


def run(args, params):
    cfg = rl_config(params)
    ev = cfg.evaluate
    models = Path(args.models_dir)
    # Every checkpoint is read and checked before any rollout.
    trained = {name: load_methods(models, cfg, name) for name in cfg.run}
    steps = len(ev.step_sizes)
    metrics, curves, families = {}, {"step": list(range(steps + 1))}, {}
    for name in cfg.run:
        family, budget, checkpoints = rl_family(name), cfg.family(name), trained[name]
        tasks = family.sample_tasks(ev.n_test, ev.seed, stream="test")
        per_task, info = {}, {}
        with Sampler.for_job(family, cfg.sampler, ev.n_test * budget.test_rollouts) as sampler:
            for method in cfg.methods:
                start = starting_point(method, checkpoints, tasks, sampler, ev.seed, name)
                rng = generator(ev.seed, f"rl/evaluate/{name}")  # the same noise for every method
                curve = adaptation_returns(start.policy, start.params, tasks, sampler, ev.step_sizes,
                                           budget.test_rollouts, cfg.gamma, rng, start.with_task,
                                           start.per_task)  # fmt: skip
                per_task[method] = curve.per_task
                leaves = {f"return_step{s}": _finite(curve.mean[s]) for s in range(steps + 1)}
                leaves |= {f"ci95_step{s}": _finite(curve.ci95[s]) for s in range(steps + 1)}
                metrics.setdefault(name, {})[method] = leaves
                curves[f"{name}.{method}"] = [round(float(v), 4) for v in curve.mean]
                curves[f"{name}.{method}.ci95"] = [round(float(v), 4) for v in curve.ci95]
                info[method] = {"test_rollouts": budget.test_rollouts, "training": start.training, **start.extra}
                print(f"{name:13s} {method:13s} return " + " ".join(f"{float(v):8.2f}" for v in curve.mean))
        comparisons = {f"{m} - {o}": paired(per_task, m, o) for m in cfg.methods if m not in ("scratch", "oracle")
                       for o in ("scratch", "pretrained") if m != o}  # fmt: skip
        families[name] = {"horizon": family.horizon, "methods": info, "paired": comparisons}
    write_json(args.metrics_out, metrics)
    write_text(args.curves_out, pd.DataFrame(curves).to_csv(index=False))
    write_json(args.methods_out, {"n_test": ev.n_test, "step_sizes": list(ev.step_sizes), "gamma": cfg.gamma,
                                  "families": families})  # fmt: skip
    stage.wrote(args.metrics_out, args.curves_out, args.methods_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--metrics-out", required=True)
    p.add_argument("--curves-out", required=True)
    p.add_argument("--methods-out", required=True)
    stage.main(run, p)
