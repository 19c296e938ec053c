"""Scoring every sinusoid method on the fixed test tasks (stage ``evaluate_fewshot``), and the tables
the pipeline commits.

Three evaluations, all on tasks no method trained on:
- the sinusoid test tasks, every K, 0..S steps of the adaptation optimiser (the main tables);
- a longer fine-tune (the REML thesis's convergence figure), one optimiser and step size for all;
- task families never seen in meta-training (research question 3), for every method that does not
  read the true task parameters.
REML methods compose one network per test task from its support points, with the pool frozen. Every
trained method runs once per replicate (seed): each test task's curve is averaged over the replicates
before the mean and CI over tasks are taken, and the spread of the replicates' means is kept beside
them. ``reml_random`` and ``reml_fixed`` are built from the reference REML row's pools
(:mod:`reml.methods.reml.ablations`), and the reference row is compared with them and with the baselines
task by task (paired differences).

Contract (shared by every later method): ``reports/scores/sinusoid.json`` holds scalar leaves
``<method>.k<K>.mse_step<S>`` and ``<method>.k<K>.ci95_step<S>`` for S in {0, 1, 5, 10} (null where
fine-tuning diverged to inf or NaN on some task), ``median_step<S>``, ``diverged_step<S>`` (tasks with a
non-finite MSE), ``sd_seeds_step<S>`` (standard deviation of the replicates' means; null with one) and
``n_runs``; ``reports/scores/sinusoid_paired.json`` holds, for the reference REML row against each other
method, ``<method>.k<K>.diff_step<S>`` (reference minus other, mean over tasks) and ``ci95_step<S>``;
``reports/curves/sinusoid.csv`` holds every step 0..S, one row per step, columns
``<method>_k<K>`` (mean) and ``<method>_k<K>_ci95``; ``reports/metrics/sinusoid/k<K>.json`` (and
``unrelated-<family>.json``) hold each method's MSE after all S steps, for ``dvc metrics show``.

Devices: :func:`evaluate` takes the ``device`` to score on; it loads every checkpoint there and moves
the (CPU-drawn) task sets there once. The curves come back on the CPU (:func:`reml.core.harness.score`),
so every table is computed the same way on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch

from reml.core.config import ConfigError
from reml.core.curve import Curve, rounded, seed_spread
from reml.core.harness import Adaptation, batched_trajectories, score
from reml.core.headline import headline
from reml.core.nets import MLP, InputKind, Weights, make_inputs
from reml.core.tasks import TaskSet
from reml.families.sinusoid.checkpoint import load_checkpoint
from reml.families.sinusoid.config import (
    META_VARIANTS,
    ORACLE_METHODS,
    REML_ABLATIONS,
    REML_METHODS,
    SINGLE_RUN,
    SinusoidParams,
    reml_run,
    split_reml_method,
)
from reml.families.sinusoid.reml import ablations, load_composer
from reml.families.sinusoid.tasks import SinusoidDistribution

METRIC_STEPS = (0, 1, 5, 10)  # the steps of the tables (Finn's Table 2: 1, 5, 10)


class Method(Protocol):
    """What the harness needs from a trained method (a :class:`~reml.families.sinusoid.checkpoint.Checkpoint`,
    or a REML :class:`~reml.families.sinusoid.reml.RegressionComposer`, which builds one network per task)."""

    @property
    def method(self) -> str: ...

    @property
    def model(self) -> MLP: ...

    inputs: InputKind

    def step_size(self, k: int) -> float: ...

    def initial_params(self, tasks: TaskSet) -> tuple[Weights, bool]:
        """Parameters to fine-tune on ``tasks`` (a K-shot view); True if stacked one set per task.
        Implementations may read the support points and (oracles only) the task parameters, never the
        query points."""
        ...


@dataclass(frozen=True)
class MethodResult:
    """One method's query-MSE curves on the test tasks, per K (each task averaged over the method's runs,
    its replicates), and the standard deviation of the runs' means."""

    method: str
    step_sizes: dict[int, tuple[float, ...]]  # K -> the step size of each run
    curves: dict[int, Curve]  # K -> curve over steps 0..S
    seed_sd: dict[int, torch.Tensor]  # K -> (S+1,) spread over runs (NaN with one run)
    n_runs: int


def evaluate_method(
    runs: Sequence[Method] | Method,
    tasks: TaskSet,
    shots: Sequence[int],
    optimizer: str,
    steps: int,
    lr: float | None = None,
) -> MethodResult:
    """Score a method through the shared harness for every K, on the device of ``tasks`` (and the runs).

    ``runs`` are independent trainings of one method (seeds); each test task's curve is averaged over
    them before the mean and CI over tasks are taken. ``lr`` overrides the runs' tuned step sizes.
    """
    runs = [runs] if not isinstance(runs, Sequence) else list(runs)
    curves, step_sizes, spread = {}, {}, {}
    for k in shots:
        view = tasks.with_shots(k)
        per_run, step_sizes[k] = [], tuple(lr or run.step_size(k) for run in runs)
        for run, step_size in zip(runs, step_sizes[k], strict=True):
            params, per_task = run.initial_params(view)
            adaptation = Adaptation(optimizer=optimizer, lr=step_size, steps=steps)  # type: ignore[arg-type]
            per_run.append(score(run.model, params, view, adaptation, inputs=run.inputs, per_task=per_task).per_task)
        stacked = torch.stack(per_run)  # (runs, tasks, S+1)
        curves[k], spread[k] = Curve(per_task=stacked.mean(dim=0)), seed_spread(stacked)
    return MethodResult(runs[0].method, step_sizes, curves, spread, len(runs))


def metrics(results: Sequence[MethodResult]) -> dict[str, dict[str, dict[str, float]]]:
    """Nested dict for the metrics JSON (see module docstring)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for result in results:
        out[result.method] = {}
        for k, curve in result.curves.items():
            n_steps = curve.per_task.shape[1] - 1
            leaves: dict[str, float] = {}
            median, diverged = curve.median, curve.diverged
            for s in sorted({s for s in METRIC_STEPS if s <= n_steps} | {n_steps}):
                leaves[f"mse_step{s}"] = rounded(curve.mean[s], 6)
                leaves[f"ci95_step{s}"] = rounded(curve.ci95[s], 6)
                leaves[f"median_step{s}"] = rounded(median[s], 6)
                leaves[f"diverged_step{s}"] = int(diverged[s])
                leaves[f"sd_seeds_step{s}"] = rounded(result.seed_sd[k][s], 6)
            out[result.method][f"k{k}"] = leaves | {"n_runs": result.n_runs}
    return out


PAIRED_WITH = ("reml_random", "reml_fixed", "scratch", "scratch_deep", "pretrained", "pretrained_matched", "maml",
               "maml_matched")  # fmt: skip


def paired(reference: MethodResult, others: Sequence[MethodResult]) -> dict[str, Any]:
    """The reference REML row minus each other method, task by task (the same test tasks in the same
    order): mean and 95% CI of the differences per K and step (null where either side diverged)."""
    out: dict[str, Any] = {"reference": reference.method}
    for other in others:
        by_k = {}
        for k, curve in reference.curves.items():
            diff = curve.minus(other.curves[k])
            n_steps = diff.steps
            leaves: dict[str, float | None] = {}
            for s in sorted({s for s in METRIC_STEPS if s <= n_steps} | {n_steps}):
                leaves[f"diff_step{s}"] = rounded(diff.mean[s], 6)
                leaves[f"ci95_step{s}"] = rounded(diff.ci95[s], 6)
            by_k[f"k{k}"] = leaves
        out[other.method] = by_k
    return out


def curves_table(results: Sequence[MethodResult]) -> pd.DataFrame:
    """Wide table: a ``step`` column, then ``<method>_k<K>`` and ``<method>_k<K>_ci95`` columns."""
    columns: dict[str, list[float] | range] = {}
    for result in results:
        for k, curve in result.curves.items():
            if "step" not in columns:
                columns["step"] = range(curve.per_task.shape[1])
            columns[f"{result.method}_k{k}"] = [round(float(v), 6) for v in curve.mean]
            columns[f"{result.method}_k{k}_ci95"] = [round(float(v), 6) for v in curve.ci95]
    return pd.DataFrame(columns)


def example_fits(
    ckpts: Sequence[Method],
    tasks: TaskSet,
    distribution: SinusoidDistribution,
    shots: Sequence[int],
    optimizer: str,
    steps: int,
    n_grid: int = 200,
) -> pd.DataFrame:
    """Long table for the example-fit figure (Finn Fig. 2): truth, support points, and every method's
    prediction on a dense grid after each step, for the given (few) tasks.

    Columns: ``kind`` (truth | support | prediction), ``task``, ``k``, ``method``, ``step``, ``x``, ``y``.
    The grid is drawn only for plotting, after scoring; no method trains on it. It is made on the CPU
    (the same points on every device) and moved to the device of ``tasks``.
    """
    n = len(tasks)
    grid = torch.linspace(*distribution.x_range, n_grid).expand(n, n_grid)[..., None]  # (n, G, 1)
    grid = grid.to(tasks.support_x.device)
    truth = distribution.evaluate(tasks.task_params, grid)
    frames = [_frame("truth", grid, truth, k=0, method="", step=0)]
    for k in shots:
        view = tasks.with_shots(k)
        frames.append(_frame("support", view.support_x, view.support_y, k=k, method="", step=0))
        for ckpt in ckpts:
            adaptation = Adaptation(optimizer=optimizer, lr=ckpt.step_size(k), steps=steps)  # type: ignore[arg-type]
            params, per_task = ckpt.initial_params(view)
            with torch.no_grad():
                preds = batched_trajectories(
                    ckpt.model,
                    params,
                    make_inputs(view.support_x, view.task_params, ckpt.inputs),
                    view.support_y,
                    make_inputs(grid, view.task_params, ckpt.inputs),
                    adaptation,
                    per_task,
                )  # (n, S+1, G, 1)
            for s in range(steps + 1):
                frames.append(_frame("prediction", grid, preds[:, s], k=k, method=ckpt.method, step=s))
    return pd.concat(frames, ignore_index=True)


def _frame(kind: str, x: torch.Tensor, y: torch.Tensor, k: int, method: str, step: int) -> pd.DataFrame:
    n, m = x.shape[0], x.shape[1]
    return pd.DataFrame(
        {
            "kind": kind,
            "task": torch.arange(n).repeat_interleave(m).numpy(),
            "k": k,
            "method": method,
            "step": step,
            "x": x[..., 0].reshape(-1).cpu().numpy().round(5),
            "y": y[..., 0].reshape(-1).cpu().numpy().round(5),
        }
    )


# --------------------------------------------------------------------------- the stage


def producing_stage(run: str) -> str:
    """The DVC stage that writes one run (``<method>-<replicate>``): a matrix item of train_maml,
    train_scratch, train_pretrained or train_oracle."""
    method, _, replicate = run.rpartition("-")
    if method in SINGLE_RUN:
        return f"train_meta_once@{method}"
    if method in META_VARIANTS:
        return f"train_maml@{run}"
    if method in ("scratch", "scratch_deep"):
        return f"train_scratch@{run}"
    if method in ("pretrained", "pretrained_matched"):
        return f"train_pretrained@{run}"
    return f"train_{method}@{replicate}"


def load_runs(
    params: SinusoidParams, models_dir: Path, method: str, *, device: torch.device, cache: dict | None = None
) -> list[Method]:
    """A method's trained runs, one per replicate, loaded onto ``device``: checkpoints, REML agents, or the
    ablations on the reference REML agents' pools (``cache`` shares the loaded agents between them)."""
    cache = {} if cache is None else cache
    if method in REML_ABLATIONS:
        agents = load_runs(params, models_dir, params.evaluate_fewshot.reml_reference, device=device, cache=cache)
        return [next(a for a in ablations(agent) if a.method == method) for agent in agents]  # type: ignore[arg-type]
    if method not in REML_METHODS:
        return [
            load_checkpoint(
                models_dir / f"{method}-{r}.safetensors", producing_stage(f"{method}-{r}"), method, device=device
            )  # fmt: skip
            for r in params.runs(method)
        ]
    if method not in cache:
        agent, encoding, variant = split_reml_method(method)
        distribution = SinusoidDistribution.of(params.sinusoid)
        names = [reml_run(agent, encoding, variant, r) for r in params.replicates]
        cache[method] = [
            load_composer(models_dir / "reml" / name, distribution, f"train_reml@{name}", device=device)
            for name in names
        ]
    return cache[method]


def describe(result: MethodResult, steps: int) -> str:
    return ", ".join(
        f"K={k} (lr {'/'.join(f'{lr:g}' for lr in result.step_sizes[k])}): {c.mean[0]:.3f} -> {c.mean[steps]:.3f}"
        for k, c in result.curves.items()
    )


def method_info(result: MethodResult, runs: list) -> dict[str, Any]:
    """Step sizes (one per run when a method has several seeds) and what each run recorded."""
    step_sizes = {f"k{k}": (lrs[0] if len(lrs) == 1 else list(lrs)) for k, lrs in result.step_sizes.items()}
    info = {"step_sizes": step_sizes, "inputs": runs[0].inputs}
    if result.method in REML_METHODS:
        info["test_invalid_rate"] = {f"k{k}": [r.invalid_rates[k] for r in runs] for k in result.curves}
        info["runs"] = [r.info for r in runs]
    elif result.method in REML_ABLATIONS:
        info["runs"] = [{"seed": r.seed, "layers": list(r.layers)} for r in runs]
    else:
        info["runs"] = [r.info for r in runs]
    return info


@dataclass(frozen=True)
class Evaluation:
    """Everything ``evaluate_fewshot`` writes."""

    metrics: dict[str, Any]  # the main tables (reports/scores/sinusoid.json)
    unrelated: dict[str, Any]  # the unrelated families, with the in-distribution rows first
    headline: dict[str, Any]  # reports/metrics/sinusoid/<setting>.json (reml/core/headline.py)
    paired: dict[str, Any]  # the reference REML row against the others, task by task
    curves: pd.DataFrame  # every step of the main evaluation
    long_curves: pd.DataFrame  # the longer fine-tune
    examples: pd.DataFrame  # fits on a few test tasks, for the example figure
    methods: dict[str, Any]  # step sizes and what each method recorded


def evaluate(
    params: SinusoidParams, tasks: TaskSet, unrelated: dict[str, TaskSet], models_dir: Path, *, device: torch.device
) -> Evaluation:
    """Score every method of ``evaluate_fewshot.methods`` on the test tasks and the unrelated families, on
    ``device`` (the task sets are moved there).

    Every checkpoint is loaded (and so checked) before any compute."""
    cfg, adaptation = params.evaluate_fewshot, params.adaptation
    needed = max(*adaptation.shots, cfg.unrelated_k, cfg.long_finetune.k)
    for name, task_set in (("the test tasks", tasks), *((f"the {n} tasks", t) for n, t in unrelated.items())):
        if needed > task_set.k_max:
            raise ConfigError(
                f"adaptation.shots / evaluate_fewshot: K = {needed} but {name} store only {task_set.k_max} "
                "support points; rerun `dvc repro generate_tasks`"
            )
    cache: dict = {}
    runs = {m: load_runs(params, models_dir, m, device=device, cache=cache) for m in cfg.methods}
    tasks, unrelated = tasks.to(device), {name: t.to(device) for name, t in unrelated.items()}

    results = []
    for method, method_runs in runs.items():
        result = evaluate_method(method_runs, tasks, adaptation.shots, adaptation.optimizer, adaptation.steps)
        results.append(result)
        print(f"{method:>20}: query MSE step 0 -> {adaptation.steps}: {describe(result, adaptation.steps)}")
    methods_info = {r.method: method_info(r, runs[r.method]) for r in results}  # before any recomposing

    long = cfg.long_finetune
    long_results = [
        evaluate_method(runs[m], tasks, [long.k], long.optimizer, long.steps, lr=long.lr) for m in long.methods
    ]
    for result in long_results:
        print(
            f"{result.method:>20}: {long.steps} {long.optimizer} steps (lr {long.lr:g}): {describe(result, long.steps)}"
        )

    unrelated_metrics = {"in_distribution": metrics([r for r in results if r.method not in ORACLE_METHODS])}
    for name, family_tasks in unrelated.items():
        family_results = [
            evaluate_method(method_runs, family_tasks, [cfg.unrelated_k], adaptation.optimizer, adaptation.steps)
            for method, method_runs in runs.items()
            if method not in ORACLE_METHODS
        ]
        unrelated_metrics[name] = metrics(family_results)
        print(f"{name}: " + ", ".join(f"{r.method} {describe(r, adaptation.steps)}" for r in family_results))

    examples = example_fits(
        [method_runs[0] for method_runs in runs.values()],
        tasks.subset(slice(0, cfg.n_examples)),
        SinusoidDistribution.of(params.sinusoid),
        adaptation.shots,
        adaptation.optimizer,
        adaptation.steps,
    )
    by_method = {r.method: r for r in results}
    reference = by_method.get(cfg.reml_reference)
    others = [m for m in PAIRED_WITH if m in by_method] + [m for m in REML_METHODS if m in by_method
                                                           and m != cfg.reml_reference]  # fmt: skip
    paired_scores = paired(reference, [by_method[m] for m in others]) if reference else {}
    main = metrics(results)
    by_setting = {f"k{k}": {m: by_k[f"k{k}"] for m, by_k in main.items()} for k in adaptation.shots}
    for name in unrelated:  # research question 3's families, at its K
        by_setting[f"unrelated-{name}"] = {
            m: by_k[f"k{cfg.unrelated_k}"] for m, by_k in unrelated_metrics[name].items()
        }
    return Evaluation(
        main,
        unrelated_metrics,
        headline(by_setting, "mse", adaptation.steps),
        paired_scores,
        curves_table(results),
        curves_table(long_results),
        examples,
        methods_info,
    )
