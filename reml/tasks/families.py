"""Task families never seen in meta-training, for research question 3 (robustness to unrelated tasks).

Every family uses the sinusoids' input range, so only the function changes. Each is a
:class:`FunctionFamily`: named parameter ranges, sampled uniformly, and a target function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from reml.tasks.base import TaskSet
from reml.tasks.sinusoid import uniform


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
