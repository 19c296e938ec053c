"""Sinusoid regression (Finn, Abbeel & Levine 2017, Sec. 5.1): y = A·sin(x − φ).

Defaults: A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[−5, 5], for training and test tasks alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from reml.tasks.base import TaskSet


def sinusoid(x: Tensor, amplitude: Tensor, phase: Tensor) -> Tensor:
    """y = A·sin(x − φ), broadcasting ``amplitude`` and ``phase`` against ``x``."""
    return amplitude * torch.sin(x - phase)


def uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


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
