"""Research question 4, where modularity should pay: training on a mixture of task families.

The main tables train every method on sinusoids only. Here each training task's family is drawn uniformly
from ``train_mixed.families`` (the sinusoids and the unrelated families of research question 3: lines,
quadratics, larger amplitudes, double frequency), every method trains on that mixture with its own
section's budget (``train_pretrained``, ``train_maml.<variant>``, ``train_reml``), and each is scored on
every family's fixed test set (the sinusoid test tasks and research question 3's, which no method trained
on: the mixture draws from its own streams). A single MAML initialisation has to compromise between the
families; a composer can choose different layers for each.

Validation tasks (``n_val`` per family, their own stream) tune every method's step sizes, as in the main
tables, and give ``reml_fixed`` its composition. Tasks of a mixture carry ``task_params`` padded to one
width, with the family's index first (no method here reads them: REML uses the support encoding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from reml.core.headline import headline
from reml.core.io import ArtifactError
from reml.core.seeding import generator
from reml.core.tasks import TaskDistribution, TaskSet
from reml.families.sinusoid import reml
from reml.families.sinusoid.baselines import joint, meta_learner, scratch
from reml.families.sinusoid.checkpoint import load_checkpoint, save_checkpoint
from reml.families.sinusoid.config import MIXED_UNTRAINED, REML_METHODS, SinusoidParams, split_reml_method
from reml.families.sinusoid.evaluate import Method, MethodResult, evaluate_method, metrics, paired
from reml.families.sinusoid.tasks import UNRELATED_FAMILIES, SinusoidDistribution

N_PARAMS = 1 + max(len(f.ranges) for f in UNRELATED_FAMILIES.values())  # the family's index, then its parameters


def family_distributions(params: SinusoidParams) -> dict[str, TaskDistribution]:
    """The families of ``train_mixed.families``, by name (the sinusoids as the ``sinusoid`` section sets them)."""
    known: dict[str, TaskDistribution] = {"sinusoid": SinusoidDistribution.of(params.sinusoid), **UNRELATED_FAMILIES}
    return {name: known[name] for name in params.train_mixed.families}


def _padded(tasks: TaskSet, index: int) -> Tensor:
    """(n, N_PARAMS): the family's index, then the task's parameters, zeros after them."""
    out = torch.zeros(len(tasks), N_PARAMS)
    out[:, 0] = index
    out[:, 1 : 1 + tasks.task_params.shape[1]] = tasks.task_params
    return out


def concatenate(sets: list[TaskSet], indices: list[int], name: str) -> TaskSet:
    """Task sets of different families (the same K and query size) as one set, ``task_params`` padded."""
    return TaskSet(
        support_x=torch.cat([t.support_x for t in sets]),
        support_y=torch.cat([t.support_y for t in sets]),
        query_x=torch.cat([t.query_x for t in sets]),
        query_y=torch.cat([t.query_y for t in sets]),
        task_params=torch.cat([_padded(t, i) for t, i in zip(sets, indices, strict=True)]),
        param_names=("family", *(f"p{j}" for j in range(1, N_PARAMS))),
        metadata={"family": name},
    )


@dataclass(frozen=True)
class MixedDistribution:
    """Each task's family drawn uniformly from ``families``, then the task from that family; the tasks come
    back in the order their families were drawn. Everything comes from ``generator`` (on the CPU)."""

    families: tuple[TaskDistribution, ...]
    param_names: tuple[str, ...] = ("family", *(f"p{j}" for j in range(1, N_PARAMS)))

    def sample(self, n_tasks: int, n_support: int, n_query: int, generator: torch.Generator) -> TaskSet:
        which = torch.randint(len(self.families), (n_tasks,), generator=generator)
        drawn = {i: self.families[i].sample(int((which == i).sum()), n_support, n_query, generator)
                 for i in range(len(self.families)) if (which == i).any()}  # fmt: skip
        grouped = concatenate(list(drawn.values()), list(drawn), "mixture")
        order = torch.argsort(torch.argsort(which, stable=True))  # task j of the draw is row order[j] of grouped
        return grouped.subset(order)


def mixture(params: SinusoidParams) -> MixedDistribution:
    return MixedDistribution(tuple(family_distributions(params).values()))


def validation_tasks(params: SinusoidParams) -> TaskSet:
    """``n_val`` tasks of each family of the mixture, from streams no other task set uses."""
    cfg, sizes = params.train_mixed, params.generate_tasks
    families = family_distributions(params)
    sets = [family.sample(cfg.n_val, sizes.k_max, sizes.n_query, generator(cfg.seed, f"mixed/val/{name}"))
            for name, family in families.items()]  # fmt: skip
    return concatenate(sets, list(range(len(sets))), "mixture-validation")


# --------------------------------------------------------------------------- training (stage train_mixed)


def train(
    params: SinusoidParams, method: str, replicate: int, directory: Path, *, device: torch.device
) -> pd.DataFrame:
    """Train one run of ``method`` on the mixture into ``directory``; returns its training curve."""
    val = validation_tasks(params)
    distribution = mixture(params)
    if method in REML_METHODS:
        agent, encoding, variant = split_reml_method(method)
        rows = reml.train(params, agent, encoding, variant, replicate, val, directory, device=device,
                          distribution=distribution)  # fmt: skip
        return pd.DataFrame(rows)
    if method == "pretrained":
        ckpt, log = joint(method, params, val, replicate, device=device, distribution=distribution)
    else:
        ckpt, log = meta_learner(params, method, replicate, device=device, distribution=distribution)
    save_checkpoint(directory / "checkpoint.safetensors", ckpt)
    print(f"{method} on the mixture: final training loss {log.loss[-1]:.4f}, step sizes {ckpt.step_sizes}")
    return pd.DataFrame({"iteration": log.iterations, log.column: log.loss})


# --------------------------------------------------------------------------- scoring (stage evaluate_mixed)


def load_runs(params: SinusoidParams, models_dir: Path, method: str, *, device: torch.device,
              cache: dict) -> list[Method]:  # fmt: skip
    """One run per replicate: a checkpoint, a REML agent, an ablation on the reference's pools, or (scratch,
    scratch_deep) a fresh initialisation whose step sizes are tuned on the mixture's validation tasks."""
    cfg = params.train_mixed
    if method in MIXED_UNTRAINED:
        val = validation_tasks(params)
        return [scratch(params, val, method, r, device=device) for r in params.replicates]
    if method in ("reml_random", "reml_fixed"):
        agents = load_runs(params, models_dir, cfg.reference, device=device, cache=cache)
        return [next(a for a in reml.ablations(agent) if a.method == method) for agent in agents]  # type: ignore[arg-type]
    if method in cache:
        return cache[method]
    runs: list[Method] = []
    for r in params.replicates:
        directory, made_by = models_dir / f"{method}-{r}", f"train_mixed@{method}-{r}"
        if method in REML_METHODS:
            runs.append(reml.load_composer(directory, mixture(params), made_by, device=device))
        else:
            runs.append(load_checkpoint(directory / "checkpoint.safetensors", made_by, method, device=device))
    cache[method] = runs
    return runs


def scored_methods(params: SinusoidParams) -> list[str]:
    """The rows of research question 4, in table order."""
    return [*MIXED_UNTRAINED, *params.train_mixed.methods, "reml_random", "reml_fixed"]


@dataclass(frozen=True)
class MixedEvaluation:
    scores: dict[str, Any]  # family -> method -> k<K> -> leaves (as reports/scores/sinusoid.json)
    paired: dict[str, Any]  # family -> the reference minus each other method, task by task
    headline: dict[str, Any]  # reports/metrics/sinusoid_mixed/<family>.json
    methods: dict[str, Any]  # step sizes and the budget of each method


def evaluate(params: SinusoidParams, test_sets: dict[str, TaskSet], models_dir: Path, *,
             device: torch.device) -> MixedEvaluation:  # fmt: skip
    """Score every method of :func:`scored_methods` on each family's test set at ``train_mixed.k``."""
    cfg, adaptation = params.train_mixed, params.adaptation
    for name, tasks in test_sets.items():
        if cfg.k > tasks.k_max:
            raise ArtifactError(f"train_mixed.k = {cfg.k} but the {name} test tasks store {tasks.k_max} points")
    cache: dict = {}
    runs = {m: load_runs(params, models_dir, m, device=device, cache=cache) for m in scored_methods(params)}
    scores, paired_scores = {}, {}
    for name, tasks in test_sets.items():
        tasks = tasks.to(device)
        results: list[MethodResult] = [
            evaluate_method(method_runs, tasks, [cfg.k], adaptation.optimizer, adaptation.steps)
            for method_runs in runs.values()
        ]
        by_method = {r.method: r for r in results}
        scores[name] = metrics(results)
        paired_scores[name] = paired(by_method[cfg.reference], [r for r in results if r.method != cfg.reference])
        print(f"{name}: " + ", ".join(f"{r.method} {_fmt(r.curves[cfg.k].mean[0])} -> "
                                      f"{_fmt(r.curves[cfg.k].mean[-1])}" for r in results))  # fmt: skip
    by_setting = {
        name: {m: leaves[f"k{cfg.k}"] for m, leaves in by_method.items()} for name, by_method in scores.items()
    }
    methods = {m: {"step_size": [r.step_size(cfg.k) for r in method_runs], "training_tasks": params.training_tasks(m)}
               for m, method_runs in runs.items()}  # fmt: skip
    return MixedEvaluation(scores, paired_scores, headline(by_setting, "mse", adaptation.steps), methods)


def _fmt(value: Tensor) -> str:
    v = float(value)
    return f"{v:.3f}" if math.isfinite(v) else "diverged"
