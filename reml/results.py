"""Scoring every method on the fixed test tasks, and the tables the pipeline commits.

Contract (shared by every later method): ``reports/metrics/sinusoid.json`` holds scalar leaves
``<method>.k<K>.mse_step<S>`` and ``<method>.k<K>.ci95_step<S>`` for S in {0, 1, 10} (null where
fine-tuning diverged to inf or NaN on some task);
``reports/curves/sinusoid.csv`` holds every step 0..S, one row per step, columns
``<method>_k<K>`` (mean) and ``<method>_k<K>_ci95``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd
import torch

from reml.harness import Adaptation, Curve, batched_trajectories, score
from reml.nets import MLP, InputKind, Params, make_inputs
from reml.tasks import TaskSet
from reml.tasks.sinusoid import SinusoidDistribution

METRIC_STEPS = (0, 1, 10)


class Method(Protocol):
    """What the harness needs from a trained method (a :class:`reml.checkpoint.Checkpoint`, or a REML
    :class:`reml.agents.Composer`, which builds one network per task)."""

    @property
    def method(self) -> str: ...

    @property
    def model(self) -> MLP: ...

    inputs: InputKind

    def step_size(self, k: int) -> float: ...

    def initial_params(self, tasks: TaskSet) -> tuple[Params, bool]:
        """Parameters to fine-tune on ``tasks`` (a K-shot view); True if stacked one set per task.
        Implementations may read the support points and (oracles only) the task parameters, never the
        query points."""
        ...


@dataclass(frozen=True)
class MethodResult:
    """One method's query-MSE curves on the test tasks, per K (averaged over its runs, e.g. seeds)."""

    method: str
    step_sizes: dict[int, tuple[float, ...]]  # K -> the step size of each run
    curves: dict[int, Curve]  # K -> curve over steps 0..S


def evaluate_method(
    runs: Sequence[Method] | Method,
    tasks: TaskSet,
    shots: Sequence[int],
    optimizer: str,
    steps: int,
    lr: float | None = None,
) -> MethodResult:
    """Score a method through the shared harness for every K.

    ``runs`` are independent trainings of one method (seeds); each test task's curve is averaged over
    them before the mean and CI over tasks are taken. ``lr`` overrides the runs' tuned step sizes.
    """
    runs = [runs] if not isinstance(runs, Sequence) else list(runs)
    curves, step_sizes = {}, {}
    for k in shots:
        view = tasks.with_shots(k)
        per_run, step_sizes[k] = [], tuple(lr or run.step_size(k) for run in runs)
        for run, step_size in zip(runs, step_sizes[k], strict=True):
            params, per_task = run.initial_params(view)
            adaptation = Adaptation(optimizer=optimizer, lr=step_size, steps=steps)  # type: ignore[arg-type]
            per_run.append(score(run.model, params, view, run.inputs, adaptation, per_task).per_task)
        curves[k] = Curve(per_task=torch.stack(per_run).mean(dim=0))
    return MethodResult(runs[0].method, step_sizes, curves)


def metrics(results: Sequence[MethodResult]) -> dict[str, dict[str, dict[str, float]]]:
    """Nested dict for the metrics JSON (see module docstring)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for result in results:
        out[result.method] = {}
        for k, curve in result.curves.items():
            n_steps = curve.per_task.shape[1] - 1
            leaves: dict[str, float] = {}
            for s in sorted({s for s in METRIC_STEPS if s <= n_steps} | {n_steps}):
                leaves[f"mse_step{s}"] = _finite(curve.mean[s])
                leaves[f"ci95_step{s}"] = _finite(curve.ci95[s])
            out[result.method][f"k{k}"] = leaves
    return out


def _finite(value: torch.Tensor) -> float | None:
    """Rounded for the metrics JSON; None (null) when fine-tuning diverged on some task (inf or NaN)."""
    v = float(value)
    return round(v, 6) if math.isfinite(v) else None


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
    The grid is drawn only for plotting, after scoring; no method trains on it.
    """
    n = len(tasks)
    grid = torch.linspace(*distribution.x_range, n_grid).expand(n, n_grid)[..., None]  # (n, G, 1)
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
            "x": x[..., 0].reshape(-1).numpy().round(5),
            "y": y[..., 0].reshape(-1).numpy().round(5),
        }
    )
