"""Scoring every RL method on the same held-out test tasks of each family (stage ``evaluate_rl``).

The one RL evaluation routine every method goes through (Finn et al. 2017, Sec. 5.3,
:func:`adaptation_returns`): on each test task, sample episodes with the current policy, record their
mean return, take one REINFORCE step on exactly those episodes (step size ``step_sizes[s]``), and
repeat; returns after steps 0..S.

For each family: ``n_test`` tasks from the ``test`` stream (no method trains on it); every method
(scratch: a seeded random policy; pretrained, oracle, maml_trpo: their checkpoints; REML: the policy its
agent composes for each task from the task's probe rollouts) goes through it with the same action
noise and reset seeds (common random numbers), so methods are also compared task by task: the paired
differences after each step, with their 95% CI, go to ``methods.json``. Writes
``<family>.<method>.return_step<S>`` / ``ci95_step<S>``.

Device: the checkpoints are read onto the stage's device and the fine-tuning steps run there; the
episodes are sampled on the CPU (:mod:`reml.families.rl.sampler`) and moved there for each step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from reml.core.curve import Curve, rounded
from reml.core.headline import headline
from reml.core.io import ArtifactError
from reml.core.nets import Weights, on_device
from reml.core.seeding import generator
from reml.families.rl import rl_family
from reml.families.rl.checkpoint import PolicyCheckpoint, load_policy
from reml.families.rl.config import TRAINED, RLConfig
from reml.families.rl.pg import TaskBatch, reinforce_step
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.reml import RLComposer, load_rl_composer
from reml.families.rl.sampler import Sampler
from reml.families.rl.tasks import RLFamily


def adaptation_returns(
    policy: GaussianPolicy,
    params: Weights,
    tasks: np.ndarray,
    sampler: Sampler,
    step_sizes: tuple[float, ...],
    rollouts: int,
    gamma: float,
    generator: torch.Generator,
    with_task: bool = False,
    per_task: bool = False,
) -> Curve:
    """Mean return over each of the (T, P) ``tasks``' episodes after 0..len(step_sizes) policy-gradient steps.

    ``with_task`` appends the task parameters to the observation (the oracle's policy reads them);
    ``per_task``: ``params`` are stacked per task (leading axis T), e.g. REML's composed policies. The
    steps run on the device of ``params``; the returns are CPU tensors."""
    device = next(iter(params.values())).device
    current = params
    returns = []
    for s in range(len(step_sizes) + 1):
        episodes = sampler.sample(policy, current, tasks, rollouts, generator, per_task=per_task, with_task=with_task)
        returns.append(episodes.returns.mean(dim=1))
        if s < len(step_sizes):
            batch = TaskBatch.of(episodes.to(device), gamma)
            current = reinforce_step(policy, current, batch, step_sizes[s], per_task=per_task)
            per_task = True
    return Curve(torch.stack(returns, dim=1).double())


def producing_stage(method: str, family: str) -> str:
    if method == "maml_trpo":
        return f"train_maml_trpo@{family}"
    if method in TRAINED:
        return f"train_rl_ppo@{method}-{family}"
    return f"train_reml_rl@{family}"


def _check_fits(path: Path, obs_dim: int, act_dim: int, family: RLFamily, with_task: bool) -> None:
    env = family.make_env()
    expected = (
        env.observation_space.shape[0] + (len(family.param_names) if with_task else 0),
        env.action_space.shape[0],
    )
    env.close()
    if (obs_dim, act_dim) != expected:
        raise ArtifactError(f"{path}: a policy for observations of {obs_dim} and actions of {act_dim}, but "
                            f"{family.name} needs {expected[0]} and {expected[1]}")  # fmt: skip


def load_methods(
    models: Path, cfg: RLConfig, name: str, *, device: torch.device
) -> dict[str, PolicyCheckpoint | RLComposer]:
    """Every trained method's checkpoint for family ``name`` on ``device``, checked against the family."""
    family, reml = rl_family(name), cfg.reml.agent
    out: dict[str, PolicyCheckpoint | RLComposer] = {}
    for method in TRAINED:
        path = models / f"{method}-{name}.safetensors"
        ckpt = load_policy(path, producing_stage(method, name), method, name, device=device)
        if ckpt.with_task != (method == "oracle"):
            raise ArtifactError(f"{path}: with_task is {ckpt.with_task}, but only the oracle reads the task; "
                                f"rerun `dvc repro {producing_stage(method, name)}`")  # fmt: skip
        _check_fits(path, ckpt.policy.obs_dim, ckpt.policy.act_dim, family, ckpt.with_task)
        out[method] = ckpt
    path = models / f"{reml}-{name}.safetensors"
    composer = load_rl_composer(path, producing_stage(reml, name), reml, family, device=device)
    _check_fits(path, composer.policy.obs_dim, composer.policy.act_dim, family, False)
    out[reml] = composer
    return out


def paired(per_task: dict[str, Curve], method: str, other: str) -> dict[str, list[float | None]]:
    """Mean and 95% CI over tasks of method − other after each step (the same tasks and noise)."""
    diff = per_task[method].minus(per_task[other])
    return {"mean": [rounded(v, 4) for v in diff.mean], "ci95": [rounded(v, 4) for v in diff.ci95]}


@dataclass(frozen=True)
class Start:
    """Where a method's test-time fine-tuning starts on the test tasks."""

    policy: GaussianPolicy
    params: Weights
    with_task: bool  # the oracle reads the task parameters
    per_task: bool  # params stacked per task (REML composes one policy per task)
    training: dict  # the training budget, for methods.json
    extra: dict = field(default_factory=dict)


def compositions(layers: list[list[int]], tasks: np.ndarray) -> list[dict]:
    """Each distinct composition, how many test tasks got it, and their mean task parameters (read after
    composing, for the report only: the agent never sees them)."""
    out = []
    for chosen in sorted({tuple(x) for x in layers}):
        rows = [i for i, x in enumerate(layers) if tuple(x) == chosen]
        mean = tasks[rows].mean(axis=0)
        out.append({"layers": list(chosen), "tasks": len(rows), "mean_task": [round(float(v), 4) for v in mean]})
    return out


def starting_point(
    method: str, checkpoints: dict, tasks: np.ndarray, sampler: Sampler, seed: int, name: str, *, device: torch.device
) -> Start:
    """Where ``method`` starts on ``tasks``, its parameters on ``device`` (the checkpoints are read there)."""
    if method == "scratch":  # a seeded random policy, drawn on the CPU
        policy = checkpoints["pretrained"].policy
        return Start(policy, on_device(policy.init(generator(seed, f"rl/scratch/{name}")), device), False, False, {})
    if method in TRAINED:
        ckpt = checkpoints[method]
        return Start(ckpt.policy, ckpt.params, ckpt.with_task, False, ckpt.config)
    # REML: each task's policy is composed from its probe rollouts (as many as in training; their own
    # noise stream)
    composer = checkpoints[method]
    params, layers, invalid = composer.compose_tasks(tasks, sampler, generator(seed, f"rl/evaluate/{name}/probe"))
    extra = {"probe_rollouts": composer.probe_rollouts, "invalid_rate": round(invalid, 4),
             "distinct_policies": len({tuple(x) for x in layers}),
             "compositions": compositions(layers, tasks)}  # fmt: skip
    return Start(composer.policy, params, False, True, composer.config, extra)


@dataclass(frozen=True)
class Evaluation:
    """Everything ``evaluate_rl`` writes."""

    metrics: dict[str, Any]  # <family>.<method>.{return,ci95}_step<S>
    curves: pd.DataFrame  # step, then <family>.<method> and <family>.<method>.ci95
    methods: dict[str, Any]  # budgets, what REML composed, and the paired comparisons

    def headline(self) -> dict[str, Any]:
        """reports/metrics/rl/<family>.json: each method's return after the last test-time step."""
        return headline(self.metrics, "return", len(self.methods["step_sizes"]))


def evaluate(cfg: RLConfig, models: Path, *, device: torch.device) -> Evaluation:
    """Score every method on every family of ``rl.run``, fine-tuning on ``device``; every checkpoint is
    read and checked before any rollout."""
    ev = cfg.evaluate
    trained = {name: load_methods(models, cfg, name, device=device) for name in cfg.run}
    steps = len(ev.step_sizes)
    metrics, curves, families = {}, {"step": list(range(steps + 1))}, {}
    for name in cfg.run:
        family, budget, checkpoints = rl_family(name), cfg.family(name), trained[name]
        tasks = family.sample_tasks(ev.n_test, ev.seed, stream="test")
        per_task, info = {}, {}
        with Sampler.for_job(family, cfg.sampler, ev.n_test * budget.test_rollouts) as sampler:
            for method in cfg.methods:
                start = starting_point(method, checkpoints, tasks, sampler, ev.seed, name, device=device)
                rng = generator(ev.seed, f"rl/evaluate/{name}")  # the same noise for every method
                curve = adaptation_returns(start.policy, start.params, tasks, sampler, ev.step_sizes,
                                           budget.test_rollouts, cfg.gamma, rng, start.with_task,
                                           start.per_task)  # fmt: skip
                per_task[method] = curve
                leaves = {f"return_step{s}": rounded(curve.mean[s], 4) for s in range(steps + 1)}
                leaves |= {f"ci95_step{s}": rounded(curve.ci95[s], 4) for s in range(steps + 1)}
                metrics.setdefault(name, {})[method] = leaves
                curves[f"{name}.{method}"] = [round(float(v), 4) for v in curve.mean]
                curves[f"{name}.{method}.ci95"] = [round(float(v), 4) for v in curve.ci95]
                info[method] = {"test_rollouts": budget.test_rollouts, "training": start.training, **start.extra}
                print(f"{name:13s} {method:13s} return " + " ".join(f"{float(v):8.2f}" for v in curve.mean))
        comparisons = {f"{m} - {o}": paired(per_task, m, o) for m in cfg.methods if m not in ("scratch", "oracle")
                       for o in ("scratch", "pretrained") if m != o}  # fmt: skip
        families[name] = {"horizon": family.horizon, "methods": info, "paired": comparisons}
    methods = {"n_test": ev.n_test, "step_sizes": list(ev.step_sizes), "gamma": cfg.gamma, "families": families}
    return Evaluation(metrics, pd.DataFrame(curves), methods)
