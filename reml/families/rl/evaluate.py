"""Scoring every RL method on the same held-out test tasks of each family (stage ``evaluate_rl``).

The one RL evaluation routine every method goes through (Finn et al. 2017, Sec. 5.3,
:func:`adaptation_returns`): on each test task, sample episodes with the current policy, record their
mean return, take one REINFORCE step on exactly those episodes (step size ``step_sizes[s]``), and
repeat; returns after steps 0..S.

For each family: ``n_test`` tasks from the ``test`` stream (no method trains on it); every method
(scratch: a seeded random policy; pretrained, pretrained_matched, oracle, maml_trpo, maml_trpo_matched:
their checkpoints; REML: the policy its agent composes for each task from the task's probe rollouts;
``reml_random``: a uniformly random valid composition of the same pool per task, drawn without the
task; ``reml_fixed``: the one composition the agent chose most often on validation tasks, never the
test tasks) goes through it with the same action noise and reset seeds (common random numbers), so
methods are also compared task by task: the paired differences after each step, with their 95% CI, go
to ``methods.json``. A method trained over several replicates is run once per replicate (REML's
ablations once per replicate's pool) and each task's return is the mean over the runs. Writes
``<family>.<method>.return_step<S>`` / ``ci95_step<S>`` (over tasks), ``sd_seeds_step<S>`` (the sd of the
runs' means, with several runs), ``diverged_step<S>`` (tasks whose return is not finite),
``median_step<S>`` and ``n_runs``.

Device: the checkpoints are read onto the stage's device and the fine-tuning steps run there; the
episodes are sampled on the CPU (:mod:`reml.families.rl.sampler`) and moved there for each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from reml.core.curve import Curve, rounded, seed_spread
from reml.core.headline import headline
from reml.core.io import ArtifactError
from reml.core.nets import Weights, on_device
from reml.core.seeding import generator
from reml.families.rl.checkpoint import PolicyCheckpoint, load_policy
from reml.families.rl.config import MAML_METHODS, N_SLOTS, REML_ABLATIONS, REML_VERSUS, TRAINED, RLConfig
from reml.families.rl.pg import TaskBatch, reinforce_step
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.reml import RLComposer, load_rl_composer
from reml.families.rl.sampler import Sampler
from reml.families.rl.tasks import RLFamily
from reml.methods.reml.ablations import most_chosen, random_compositions
from reml.methods.reml.agents import compose_layers


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


def producing_stage(method: str, family: str, replicate: int) -> str:
    if method in MAML_METHODS:
        return f"train_maml_trpo@{method}-{family}-{replicate}"
    if method in TRAINED:
        return f"train_rl_ppo@{method}-{family}-{replicate}"
    return f"train_reml_rl@{family}-{replicate}"


def _check_fits(
    path: Path, obs_dim: int, act_dim: int, family: RLFamily, with_task: bool, config: dict, made_by: str
) -> None:
    if config.get("frame_skip") != family.frame_skip:
        raise ArtifactError(f"{path}: trained with frame_skip {config.get('frame_skip')!r}, but rl.families."
                            f"{family.name}.frame_skip is {family.frame_skip!r} (another control interval); "
                            f"rerun `dvc repro {made_by}`")  # fmt: skip
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
) -> dict[str, list[PolicyCheckpoint | RLComposer]]:
    """Every trained method's checkpoints for family ``name`` on ``device``, one per replicate
    (``<method>-<family>-<replicate>.safetensors``), checked against the family."""
    family, reml = cfg.env_family(name), cfg.reml.agent
    out: dict[str, list[PolicyCheckpoint | RLComposer]] = {}
    for method in TRAINED:
        out[method] = []
        for r in cfg.runs(method):
            path, made_by = models / f"{method}-{name}-{r}.safetensors", producing_stage(method, name, r)
            ckpt = load_policy(path, made_by, method, name, device=device)
            if ckpt.with_task != (method == "oracle"):
                raise ArtifactError(f"{path}: with_task is {ckpt.with_task}, but only the oracle reads the task; "
                                    f"rerun `dvc repro {made_by}`")  # fmt: skip
            _check_fits(path, ckpt.policy.obs_dim, ckpt.policy.act_dim, family, ckpt.with_task, ckpt.config, made_by)
            out[method].append(ckpt)
    out[reml] = []
    for r in cfg.runs(reml):
        path = models / f"{reml}-{name}-{r}.safetensors"
        made_by = producing_stage(reml, name, r)
        composer = load_rl_composer(path, made_by, reml, family, device=device)
        policy = composer.policy
        _check_fits(path, policy.obs_dim, policy.act_dim, family, False, composer.config or {}, made_by)
        out[reml].append(composer)
    return out


def paired(per_task: dict[str, Curve], method: str, other: str) -> dict[str, list[float | None]]:
    """Mean and 95% CI over tasks of method − other after each step (the same tasks and noise), and on
    how many tasks the difference is not finite (then the mean is null: no verdict)."""
    diff = per_task[method].minus(per_task[other])
    return {"mean": [rounded(v, 4) for v in diff.mean], "ci95": [rounded(v, 4) for v in diff.ci95],
            "diverged": [int(v) for v in diff.diverged]}  # fmt: skip


def comparisons(cfg: RLConfig, per_task: dict[str, Curve]) -> dict[str, dict]:
    """``<method> - <other>`` for every learned method against scratch and pretrained, then the REML
    agent against its ablations and every baseline it is measured against (REML_VERSUS)."""
    learned = [m for m in cfg.methods if m not in ("scratch", "oracle", *REML_ABLATIONS)]
    pairs = [(m, o) for m in learned for o in ("scratch", "pretrained") if m != o]
    pairs += [(cfg.reml.agent, o) for o in REML_VERSUS if (cfg.reml.agent, o) not in pairs]
    return {f"{m} - {o}": paired(per_task, m, o) for m, o in pairs}


def training_budget(method: str, training: dict, horizon: int) -> dict[str, int]:
    """What one run of ``method`` trained on: tasks and environment steps (at most, for the episodic
    methods: episodes that end early use fewer; PPO's ``tasks`` is its episodes at the full horizon, one
    task each, so at least that many)."""
    if method == "scratch":
        return {"tasks": 0, "env_steps": 0}
    if "timesteps" in training:  # PPO: a fresh task every episode
        return {"tasks": training["timesteps"] // horizon, "env_steps": training["timesteps"]}
    if "meta_batch" in training:  # MAML-TRPO: rollouts before and after the inner step per task
        tasks = training["iterations"] * training["meta_batch"]
        return {"tasks": tasks, "env_steps": tasks * 2 * training["rollouts"] * horizon}
    # REML and its ablations (the same pool): probe, inner steps and score per composition
    tasks = training["reml_episodes"]
    return {"tasks": tasks, "env_steps": tasks * (2 + training["inner_steps"]) * training["rollouts"] * horizon}


@dataclass(frozen=True)
class Start:
    """Where a method's test-time fine-tuning starts on a set of tasks."""

    policy: GaussianPolicy
    params: Weights
    with_task: bool  # the oracle reads the task parameters
    per_task: bool  # params stacked per task (REML composes one policy per task)
    training: dict  # the training budget, for methods.json
    extra: dict = field(default_factory=dict)
    probe_returns: torch.Tensor | None = None  # (T,): REML's probe batch per task, run before composing


def compositions(layers: list[list[int]], tasks: np.ndarray) -> list[dict]:
    """Each distinct composition, how many test tasks got it, and their mean task parameters (read after
    composing, for the report only: the agent never sees them)."""
    out = []
    for chosen in sorted({tuple(x) for x in layers}):
        rows = [i for i, x in enumerate(layers) if tuple(x) == chosen]
        mean = tasks[rows].mean(axis=0)
        out.append({"layers": list(chosen), "tasks": len(rows), "mean_task": [round(float(v), 4) for v in mean]})
    return out


def ablation(
    method: str, composer: RLComposer, n_tasks: int, sampler: Sampler, seed: int, name: str, run: int, n_choose: int
) -> Start:
    """``reml_random`` or ``reml_fixed`` on ``composer``'s pool (run ``run``) for ``n_tasks`` tasks: random
    compositions drawn from their own generator (the task is never read), or the composition the agent
    chose most often for ``n_choose`` validation tasks (the ``validation`` stream, not the test tasks;
    the same composition whatever ``n_tasks``)."""
    if method == "reml_random":
        layers = random_compositions(composer.env.pool, N_SLOTS, n_tasks, generator(seed, f"rl/{name}/random/{run}"))
    else:
        validation = composer.env.family.sample_tasks(n_choose, seed, stream="validation")
        chosen = composer.compose_tasks(validation, sampler, generator(seed, f"rl/{name}/validation/{run}")).layers
        layers = [most_chosen(chosen)] * n_tasks
    params = compose_layers(composer.env, layers).params
    extra = {"distinct_policies": len({tuple(x) for x in layers})}
    if method == "reml_fixed":
        extra["layers"] = layers[0]
    return Start(composer.policy, params, False, True, composer.config, extra)


def starting_point(
    method: str,
    checkpoints: dict,
    tasks: np.ndarray,
    sampler: Sampler,
    seed: int,
    name: str,
    run: int = 0,
    *,
    device: torch.device,
    agent: str = "",
    n_choose: int | None = None,
    probe_stream: str = "evaluate",
) -> Start:
    """Where run ``run`` (an index into ``checkpoints[method]``) of ``method`` starts on ``tasks``, its
    parameters on ``device`` (the checkpoints are read there). ``agent``: the REML agent whose pools the
    ablations use; ``n_choose``: the validation tasks reml_fixed chooses its composition on (default: as
    many as ``tasks``); ``probe_stream``: names the noise of REML's probe (``evaluate`` on the test
    tasks, ``validate`` on the validation tasks)."""
    if method == "scratch":  # a seeded random policy, drawn on the CPU
        policy = checkpoints["pretrained"][0].policy
        return Start(policy, on_device(policy.init(generator(seed, f"rl/scratch/{name}")), device), False, False, {})
    if method in TRAINED:
        ckpt = checkpoints[method][run]
        return Start(ckpt.policy, ckpt.params, ckpt.with_task, False, ckpt.config)
    if method in REML_ABLATIONS:
        return ablation(method, checkpoints[agent][run], len(tasks), sampler, seed, name, run, n_choose or len(tasks))
    # REML: each task's policy is composed from its probe rollouts (as many as in training; their own
    # noise stream)
    composer = checkpoints[method][run]
    composed = composer.compose_tasks(tasks, sampler, generator(seed, f"rl/{probe_stream}/{name}/probe"))
    extra = {"probe_rollouts": composer.probe_rollouts, "invalid_rate": round(composed.invalid_rate, 4),
             "distinct_policies": len({tuple(x) for x in composed.layers}),
             "compositions": compositions(composed.layers, tasks)}  # fmt: skip
    return Start(composer.policy, composed.params, False, True, composer.config, extra, composed.probe_returns)


def scored_returns(
    start: Start,
    tasks: np.ndarray,
    sampler: Sampler,
    step_sizes: tuple[float, ...],
    rollouts: int,
    gamma: float,
    generator: torch.Generator,
    alignment: str,
) -> torch.Tensor:
    """(T, S + 1) returns of ``start`` on ``tasks``, S = len(step_sizes): column c after c batches of the
    task's episodes. A start without a probe: after c steps. REML aligned by ``episodes``: column 0 is its
    probe batch (the episodes it composed from), column c >= 1 the composed policy after c - 1 steps
    (``step_sizes[:S - 1]``), so no column has seen more of the task than the others'; by ``steps``: the
    composed policy after c steps, its probe an extra batch before column 0."""
    shifted = start.probe_returns is not None and alignment == "episodes"
    sizes = step_sizes[:-1] if shifted else step_sizes
    curve = adaptation_returns(start.policy, start.params, tasks, sampler, sizes, rollouts, gamma, generator,
                               start.with_task, start.per_task).per_task  # fmt: skip
    return torch.cat([start.probe_returns[:, None], curve], dim=1) if shifted else curve


def validation_objective(returns: torch.Tensor) -> float:
    """What a step scale is chosen by: the mean return over columns 1..S and tasks (column 0 does not
    depend on the step size); NaN when a task's return is not finite (the scale is then ruled out)."""
    later = returns[..., 1:]
    return float(later.mean()) if bool(torch.isfinite(later).all()) else math.nan


def choose_scale(objectives: dict[float, float]) -> float:
    """The scale with the highest finite objective (the first listed on a tie); the smallest scale when
    every one diverged."""
    finite = {s: v for s, v in objectives.items() if math.isfinite(v)}
    if not finite:
        return min(objectives)
    best = max(finite.values())
    return next(s for s, v in finite.items() if v == best)


def unadapted(per_run: torch.Tensor) -> torch.Tensor:
    """(runs, tasks, steps + 1) returns with every step's entry the 0-step return: a policy that is not
    fine-tuned (Finn's oracle, ``n_itr=1``), its one batch of episodes reported at every step."""
    return per_run[..., :1].expand_as(per_run).clone()


def leaves(curve: Curve, per_run: torch.Tensor) -> dict[str, float | int | None]:
    """A method's metrics: mean and 95% CI over tasks of the per-task mean over runs, the sd of the runs'
    means (with several runs), and where some task's return is not finite their count and the median
    (a diverged task counting as the worst return, -inf)."""
    out: dict[str, float | int | None] = {"n_runs": int(per_run.shape[0])}
    spread, diverged, median = seed_spread(per_run), curve.diverged, -Curve(-curve.per_task).median
    for s in range(curve.steps + 1):
        out[f"return_step{s}"], out[f"ci95_step{s}"] = rounded(curve.mean[s], 4), rounded(curve.ci95[s], 4)
        if per_run.shape[0] > 1:
            out[f"sd_seeds_step{s}"] = rounded(spread[s], 4)
        if int(diverged[s]):
            out[f"diverged_step{s}"], out[f"median_step{s}"] = int(diverged[s]), rounded(median[s], 4)
    return out


@dataclass(frozen=True)
class Evaluation:
    """Everything ``evaluate_rl`` writes."""

    metrics: dict[str, Any]  # <family>.<method>.{return,ci95,sd_seeds,diverged,median}_step<S>, n_runs
    curves: pd.DataFrame  # step, then <family>.<method> and <family>.<method>.ci95
    methods: dict[str, Any]  # budgets, what REML composed, and the paired comparisons

    def headline(self) -> dict[str, Any]:
        """reports/metrics/rl/<family>.json: each method's return after the last test-time step."""
        return headline(self.metrics, "return", len(self.methods["step_sizes"]))


def tune_scale(
    cfg: RLConfig, method: str, checkpoints: dict, name: str, sampler: Sampler, *, device: torch.device
) -> tuple[float, dict[str, float | None]]:
    """The step scale of ``method`` on family ``name``: each scale's validation objective (mean over the
    method's runs) on ``rl.evaluate.n_val`` tasks of the family's ``validation`` stream, with one noise
    stream for every scale and method; the chosen scale and every objective (None: diverged)."""
    ev, budget = cfg.evaluate, cfg.family(name)
    if not ev.tuned:
        return ev.step_scales[0], {}
    family = cfg.env_family(name)
    tasks = family.sample_tasks(ev.n_val, ev.seed, stream="validation")
    per_scale: dict[float, list[float]] = {scale: [] for scale in ev.step_scales}
    for run in range(len(cfg.runs(method))):
        start = starting_point(method, checkpoints, tasks, sampler, ev.seed, name, run, device=device,
                               agent=cfg.reml.agent, n_choose=ev.n_test, probe_stream="validate")  # fmt: skip
        for scale in ev.step_scales:
            returns = scored_returns(start, tasks, sampler, ev.scaled(scale), budget.test_rollouts, cfg.gamma,
                                     generator(ev.seed, f"rl/validate/{name}"), ev.reml_alignment)  # fmt: skip
            per_scale[scale].append(validation_objective(returns))
    objectives = {scale: float(np.mean(v)) for scale, v in per_scale.items()}
    return choose_scale(objectives), {f"{s:g}": rounded(v, 4) for s, v in objectives.items()}


def evaluate(cfg: RLConfig, models: Path, *, device: torch.device) -> Evaluation:
    """Score every method on every family of ``rl.run``, fine-tuning on ``device``; every checkpoint is
    read and checked before any rollout. Each method's step sizes are chosen first on validation tasks
    (:func:`tune_scale`)."""
    ev = cfg.evaluate
    trained = {name: load_methods(models, cfg, name, device=device) for name in cfg.run}
    steps = len(ev.step_sizes)
    metrics, curves, families = {}, {"step": list(range(steps + 1))}, {}
    for name in cfg.run:
        family, budget, checkpoints = cfg.env_family(name), cfg.family(name), trained[name]
        tasks = family.sample_tasks(ev.n_test, ev.seed, stream="test")
        per_task, info = {}, {}
        episodes = max(ev.n_test, ev.n_val) * budget.test_rollouts
        with Sampler.for_job(family, cfg.sampler, episodes) as sampler:
            for method in cfg.methods:
                scale, objectives = tune_scale(cfg, method, checkpoints, name, sampler, device=device)
                runs, starts = [], []
                for run in range(len(cfg.runs(method))):
                    start = starting_point(method, checkpoints, tasks, sampler, ev.seed, name, run, device=device,
                                           agent=cfg.reml.agent)  # fmt: skip
                    rng = generator(ev.seed, f"rl/evaluate/{name}")  # the same noise for every method and run
                    runs.append(scored_returns(start, tasks, sampler, ev.scaled(scale), budget.test_rollouts,
                                               cfg.gamma, rng, ev.reml_alignment))  # fmt: skip
                    starts.append(start)
                per_run = torch.stack(runs)  # (runs, tasks, steps + 1)
                entry = {"test_rollouts": budget.test_rollouts, "training": starts[0].training, "runs": len(runs),
                         **training_budget(method, starts[0].training, family.horizon), "step_scale": scale,
                         "step_sizes": [rounded(v, 6) for v in ev.scaled(scale)], **starts[0].extra}  # fmt: skip
                if objectives:
                    entry["validation_objective"] = objectives
                if starts[0].probe_returns is not None:
                    entry["aligned_by"] = ev.reml_alignment
                if len(starts) > 1 and starts[0].extra:
                    entry["per_run"] = [s.extra for s in starts]
                rows = {method: (per_run, entry)}
                if method == "oracle" and ev.oracle == "unadapted":  # Finn's oracle row: never fine-tuned
                    rows = {"oracle": (unadapted(per_run), entry | {"unadapted": True}),
                            "oracle_finetuned": (per_run, entry)}  # fmt: skip
                for row, (row_runs, row_info) in rows.items():
                    curve = per_task[row] = Curve(row_runs.mean(dim=0))
                    metrics.setdefault(name, {})[row] = leaves(curve, row_runs)
                    curves[f"{name}.{row}"] = [round(float(v), 4) for v in curve.mean]
                    curves[f"{name}.{row}.ci95"] = [round(float(v), 4) for v in curve.ci95]
                    info[row] = row_info
                    print(f"{name:13s} {row:18s} x{scale:<5g} return "
                          + " ".join(f"{float(v):8.2f}" for v in curve.mean))  # fmt: skip
        families[name] = {"horizon": family.horizon, "frame_skip": family.frame_skip, "methods": info,
                          "paired": comparisons(cfg, per_task)}  # fmt: skip
    methods = {"n_test": ev.n_test, "step_sizes": list(ev.step_sizes), "step_scales": list(ev.step_scales),
               "n_val": ev.n_val, "gamma": cfg.gamma, "oracle": ev.oracle, "reml_alignment": ev.reml_alignment,
               "families": families}  # fmt: skip
    return Evaluation(metrics, pd.DataFrame(curves), methods)
