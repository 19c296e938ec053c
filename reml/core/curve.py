"""Per-task scores after each adaptation step, and the statistics every report is made of.

A :class:`Curve` holds one score per test task after each step 0..S (query MSE, query accuracy or
average return). Its mean and 95% confidence interval are taken over tasks, as in Finn et al.'s
evaluation code; tasks on which a method diverged (a non-finite score) are counted, not hidden.
Two methods scored on the same tasks (and, for RL, the same noise) are compared task by task with
:meth:`Curve.minus`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

CI_Z = 1.96  # two-sided 95% normal quantile, as in Finn et al.'s evaluation code


def ci95(values: Tensor) -> Tensor:
    """1.96·std/√n over dim 0, with the population std (ddof = 0) as in Finn et al.'s code."""
    n = values.shape[0]
    return CI_Z * values.double().std(dim=0, correction=0) / math.sqrt(n)


@dataclass(frozen=True)
class Curve:
    """A score of every task after each adaptation step 0..S."""

    per_task: Tensor  # (n_tasks, S+1), float64

    @property
    def steps(self) -> int:
        """S, the number of adaptation steps."""
        return self.per_task.shape[1] - 1

    @property
    def mean(self) -> Tensor:
        """(S+1,) mean over tasks."""
        return self.per_task.mean(dim=0)

    @property
    def ci95(self) -> Tensor:
        """(S+1,) half-width of the 95% confidence interval of the mean."""
        return ci95(self.per_task)

    @property
    def diverged(self) -> Tensor:
        """(S+1,) how many tasks have a non-finite score after each step."""
        return (~self.per_task.isfinite()).sum(dim=0)

    @property
    def median(self) -> Tensor:
        """(S+1,) median over tasks, a diverged task (inf or NaN) counting as +inf: finite as long as fewer
        than half the tasks diverged (the mean of the two middle values for an even count)."""
        values = self.per_task.double().nan_to_num(nan=math.inf, posinf=math.inf, neginf=-math.inf).sort(dim=0).values
        n = values.shape[0]
        lower, upper = values[(n - 1) // 2], values[n // 2]
        return torch.where(lower == upper, lower, (lower + upper) / 2)

    def minus(self, other: Curve) -> Curve:
        """Task-by-task differences from ``other`` (scored on the same tasks in the same order)."""
        if self.per_task.shape != other.per_task.shape:
            raise ValueError(f"curves of shapes {tuple(self.per_task.shape)} and {tuple(other.per_task.shape)}")
        return Curve(self.per_task - other.per_task)


def seed_spread(per_run: Tensor) -> Tensor:
    """(S+1,) standard deviation over runs (seeds) of each run's mean over tasks, from ``per_run``
    (n_runs, n_tasks, S+1): how much a method moves when it is retrained. NaN with one run, or where a
    run's mean is not finite."""
    means = per_run.double().mean(dim=1)
    if means.shape[0] < 2:
        return torch.full(means.shape[1:], math.nan, dtype=torch.float64)
    return means.std(dim=0, correction=1)


def rounded(value: float | Tensor, digits: int) -> float | None:
    """A value for a metrics file: rounded, or None (JSON null) where it is not finite (a diverged run)."""
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None
