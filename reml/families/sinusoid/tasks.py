"""Sinusoid regression tasks (Finn, Abbeel & Levine 2017, Sec. 5.1): y = A·sin(x − φ), and the task
families never seen in meta-training that research question 3 scores every method on.

Defaults: A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[−5, 5], for training and test tasks alike. Every unrelated
family uses the sinusoids' input range, so only the function changes; each is a
:class:`FunctionFamily`: named parameter ranges, sampled uniformly, and a target function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from reml.core.seeding import generator
from reml.core.tasks import TaskSet, uniform
from reml.families.sinusoid.config import DistributionConfig, SinusoidParams


def sinusoid(x: Tensor, amplitude: Tensor, phase: Tensor) -> Tensor:
    """y = A·sin(x − φ), broadcasting ``amplitude`` and ``phase`` against ``x``."""
    return amplitude * torch.sin(x - phase)


@dataclass(frozen=True)
class SinusoidDistribution:
    """The distribution of sinusoid tasks; ranges are [min, max] pairs."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, torch.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)
    param_names: tuple[str, ...] = ("amplitude", "phase")

    def sample_params(self, n_tasks: int, generator: torch.Generator) -> Tensor:
        """(n_tasks, 2): columns amplitude, phase."""
        amplitude = uniform((n_tasks,), *self.amplitude, generator)
        phase = uniform((n_tasks,), *self.phase, generator)
        return torch.stack([amplitude, phase], dim=1)

    def sample_x(self, n_tasks: int, n_points: int, generator: torch.Generator) -> Tensor:
        """(n_tasks, n_points, 1) inputs drawn uniformly from ``x_range``."""
        return uniform((n_tasks, n_points, 1), *self.x_range, generator)

    def evaluate(self, task_params: Tensor, x: Tensor) -> Tensor:
        """Targets for inputs ``x`` (n, m, 1) of tasks ``task_params`` (n, 2) -> (n, m, 1)."""
        amplitude = task_params[:, 0].view(-1, 1, 1)
        phase = task_params[:, 1].view(-1, 1, 1)
        return sinusoid(x, amplitude, phase)

    def sample(self, n_tasks: int, n_support: int, n_query: int, generator: torch.Generator) -> TaskSet:
        task_params = self.sample_params(n_tasks, generator)
        support_x = self.sample_x(n_tasks, n_support, generator)
        query_x = self.sample_x(n_tasks, n_query, generator)
        return TaskSet.from_function(self.evaluate, task_params, support_x, query_x, self.param_names, "sinusoid")

    @staticmethod
    def of(cfg: DistributionConfig) -> SinusoidDistribution:
        """The distribution of the ``sinusoid`` params section."""
        return SinusoidDistribution(amplitude=cfg.amplitude, phase=cfg.phase, x_range=cfg.x_range)


@dataclass(frozen=True)
class FunctionFamily:
    """Tasks y = f(x; θ) with θ drawn uniformly from ``ranges`` and x from ``x_range``."""

    name: str
    description: str  # a formula with the ranges, for the report
    ranges: tuple[tuple[str, float, float], ...]  # (parameter name, min, max)
    function: Callable[[Tensor, Tensor], Tensor]  # (task_params (n, 1, P), x (n, m, 1)) -> (n, m, 1)
    x_range: tuple[float, float] = (-5.0, 5.0)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.ranges)

    def evaluate(self, task_params: Tensor, x: Tensor) -> Tensor:
        return self.function(task_params[:, None, :], x)

    def sample(self, n_tasks: int, n_support: int, n_query: int, generator: torch.Generator) -> TaskSet:
        task_params = torch.stack([uniform((n_tasks,), lo, hi, generator) for _, lo, hi in self.ranges], dim=1)
        support_x = uniform((n_tasks, n_support, 1), *self.x_range, generator)
        query_x = uniform((n_tasks, n_query, 1), *self.x_range, generator)
        return TaskSet.from_function(self.evaluate, task_params, support_x, query_x, self.param_names, self.name)


UNRELATED_FAMILIES: dict[str, FunctionFamily] = {
    f.name: f
    for f in (
        FunctionFamily(
            "lines",
            "y = a·x + b, a ∈ [−1, 1], b ∈ [−2, 2]",
            (("a", -1.0, 1.0), ("b", -2.0, 2.0)),
            lambda p, x: p[..., 0:1] * x + p[..., 1:2],
        ),
        FunctionFamily(
            "quadratics",
            "y = a·x² + b·x + c, a ∈ [−0.2, 0.2], b ∈ [−0.5, 0.5], c ∈ [−2, 2]",
            (("a", -0.2, 0.2), ("b", -0.5, 0.5), ("c", -2.0, 2.0)),
            lambda p, x: p[..., 0:1] * x**2 + p[..., 1:2] * x + p[..., 2:3],
        ),
        FunctionFamily(
            "sinusoid_large_amplitude",
            "y = A·sin(x − φ), A ∈ [5, 10] (training: [0.1, 5]), φ ∈ [0, π]",
            (("amplitude", 5.0, 10.0), ("phase", 0.0, torch.pi)),
            lambda p, x: p[..., 0:1] * torch.sin(x - p[..., 1:2]),
        ),
        FunctionFamily(
            "sinusoid_double_frequency",
            "y = A·sin(2x − φ), A ∈ [0.1, 5], φ ∈ [0, π]",
            (("amplitude", 0.1, 5.0), ("phase", 0.0, torch.pi)),
            lambda p, x: p[..., 0:1] * torch.sin(2 * x - p[..., 1:2]),
        ),
    )
}


def fixed_task_sets(params: SinusoidParams) -> tuple[TaskSet, TaskSet, dict[str, TaskSet]]:
    """The fixed meta-test set, the validation set and a test set per unrelated family (``generate_tasks``).

    Separate streams: the test set, the validation set and every method's training tasks never coincide.
    """
    cfg = params.generate_tasks
    distribution = SinusoidDistribution.of(params.sinusoid)
    test = distribution.sample(cfg.n_test, cfg.k_max, cfg.n_query, generator(cfg.seed, "sinusoid/test"))
    val = distribution.sample(cfg.n_val, cfg.k_max, cfg.n_query, generator(cfg.seed, "sinusoid/val"))
    unrelated = {
        name: family.sample(cfg.n_unrelated, cfg.k_max, cfg.n_query, generator(cfg.seed, f"unrelated/{name}"))
        for name, family in UNRELATED_FAMILIES.items()
    }
    return test, val, unrelated
