"""The one adaptation-and-scoring routine every method goes through.

Given a method's initial parameters and a task's K support points, run S steps of a stated optimiser
on the support MSE and record the network's predictions (hence the query MSE) after every step
0..S. Step 0 is the un-adapted network. The support loss is the only thing differentiated; query
points are only ever passed forward, after the update they follow, to be scored.

All tasks are processed at once with ``torch.func.vmap``; the per-task function is also usable on
its own, which the tests use to check the batched result against a plain loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.func import grad, vmap

from reml.nets import InputKind, Params, make_inputs
from reml.tasks.base import TaskSet

Model = Callable[[Params, Tensor], Tensor]
Loss = Callable[[Tensor, Tensor], Tensor]  # (predictions, targets) -> scalar: mse for regression, cross_entropy
CI_Z = 1.96  # two-sided 95% normal quantile, as in Finn et al.'s evaluation code


@dataclass(frozen=True)
class Adaptation:
    """A fine-tuning recipe: ``steps`` full-batch updates of ``optimizer`` with step size ``lr``."""

    optimizer: Literal["sgd", "adam"]
    lr: float
    steps: int
    betas: tuple[float, float] = (0.9, 0.999)  # Adam only; PyTorch's defaults
    eps: float = 1e-8  # Adam only

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"step size must be finite and > 0, got {self.lr}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")


def mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all points and output dimensions (a scalar)."""
    return ((prediction - target) ** 2).mean()


def _updates(
    model: Model, params: Params, support_x: Tensor, support_y: Tensor, adaptation: Adaptation, loss: Loss = mse
):
    """Yield the parameters after each of the S updates on one task's support set.

    The update rule is plain SGD, θ ← θ − α∇L_support(θ), or Adam with bias correction (Kingma & Ba
    2015, Alg. 1), each step a full batch over the K support points; L is ``loss`` (MSE by default,
    cross-entropy for classification).
    """
    support_grad = grad(lambda p: loss(model(p, support_x), support_y))
    b1, b2 = adaptation.betas
    first = {k: torch.zeros_like(v) for k, v in params.items()}
    second = {k: torch.zeros_like(v) for k, v in params.items()}
    for t in range(1, adaptation.steps + 1):
        g = support_grad(params)
        if adaptation.optimizer == "sgd":
            params = {k: v - adaptation.lr * g[k] for k, v in params.items()}
        else:
            first = {k: b1 * first[k] + (1 - b1) * g[k] for k in params}
            second = {k: b2 * second[k] + (1 - b2) * g[k] ** 2 for k in params}
            params = {
                k: v - adaptation.lr * (first[k] / (1 - b1**t)) / ((second[k] / (1 - b2**t)).sqrt() + adaptation.eps)
                for k, v in params.items()
            }
        yield params


def adapt(
    model: Model, params: Params, support_x: Tensor, support_y: Tensor, adaptation: Adaptation, loss: Loss = mse
) -> Params:
    """The parameters after S updates on one task's support set (new tensors; ``params`` is not changed)."""
    final = params
    for final in _updates(model, params, support_x, support_y, adaptation, loss):  # noqa: B007 (keep the last)
        pass
    return final


def adaptation_trajectory(
    model: Model,
    params: Params,
    support_x: Tensor,
    support_y: Tensor,
    probe_x: Tensor,
    adaptation: Adaptation,
    loss: Loss = mse,
) -> Tensor:
    """Predictions on ``probe_x`` after 0, 1, ..., S updates on one task's support set.

    Shapes: ``support_x`` (K, d_in), ``support_y`` (K, d_out), ``probe_x`` (m, d_in) -> (S+1, m, d_out).
    """
    predictions = [model(params, probe_x)]
    for updated in _updates(model, params, support_x, support_y, adaptation, loss):
        predictions.append(model(updated, probe_x))
    return torch.stack(predictions)


def batched_trajectories(
    model: Model,
    params: Params,
    support_x: Tensor,
    support_y: Tensor,
    probe_x: Tensor,
    adaptation: Adaptation,
    per_task: bool = False,
    loss: Loss = mse,
) -> Tensor:
    """:func:`adaptation_trajectory` for n tasks at once, all starting from the same ``params`` or, with
    ``per_task=True``, each from its own (every tensor of ``params`` then has a leading task dimension,
    as for REML, which composes one network per task).

    Shapes: ``support_x`` (n, K, d_in), ``support_y`` (n, K, d_out), ``probe_x`` (n, m, d_in)
    -> (n, S+1, m, d_out).
    """

    def one_task(p: Params, sx: Tensor, sy: Tensor, px: Tensor) -> Tensor:
        return adaptation_trajectory(model, p, sx, sy, px, adaptation, loss)

    return vmap(one_task, in_dims=(0 if per_task else None, 0, 0, 0))(params, support_x, support_y, probe_x)


@dataclass(frozen=True)
class Curve:
    """Query MSE of every task after each adaptation step 0..S."""

    per_task: Tensor  # (n_tasks, S+1), float64

    @property
    def mean(self) -> Tensor:
        """(S+1,) mean over tasks."""
        return self.per_task.mean(dim=0)

    @property
    def ci95(self) -> Tensor:
        """(S+1,) half-width of the 95% confidence interval of the mean."""
        return ci95(self.per_task)


def ci95(values: Tensor) -> Tensor:
    """1.96·std/√n over dim 0, with the population std (ddof = 0) as in Finn et al.'s code."""
    n = values.shape[0]
    return CI_Z * values.double().std(dim=0, correction=0) / math.sqrt(n)


def score(
    model: Model, params: Params, tasks: TaskSet, inputs: InputKind, adaptation: Adaptation, per_task: bool = False
) -> Curve:
    """Adapt on every task's support set and return the query MSE after each step (``per_task``: see
    :func:`batched_trajectories`)."""
    support_x = make_inputs(tasks.support_x, tasks.task_params, inputs)
    query_x = make_inputs(tasks.query_x, tasks.task_params, inputs)
    with torch.no_grad():  # grad() inside differentiates the support loss on its own
        predictions = batched_trajectories(model, params, support_x, tasks.support_y, query_x, adaptation, per_task)
    errors = (predictions - tasks.query_y[:, None]) ** 2  # (n, S+1, Q, d_out)
    return Curve(per_task=errors.double().mean(dim=(2, 3)))


def tune_step_size(
    model: Model,
    params: Params,
    val_tasks: TaskSet,
    inputs: InputKind,
    optimizer: Literal["sgd", "adam"],
    steps: int,
    grid: Sequence[float],
    per_task: bool = False,
) -> tuple[float, dict[float, float]]:
    """Pick the step size from ``grid`` with the lowest validation query MSE (Finn et al.'s
    "automatically tuned step size" for the pretrained baseline).

    ``val_tasks`` are validation tasks already cut to the K being tuned for. The objective is the
    mean query MSE over steps 1..S (the area under the adaptation curve), so a step size must both
    help early and not diverge later. Diverging step sizes score +inf; ties go to the smaller step
    size. Returns (best, objective per step size).
    """
    objective: dict[float, float] = {}
    for lr in grid:
        adaptation = Adaptation(optimizer=optimizer, lr=lr, steps=steps)
        value = float(score(model, params, val_tasks, inputs, adaptation, per_task).mean[1:].mean())
        objective[lr] = value if math.isfinite(value) else math.inf
    best = min(sorted(objective), key=lambda lr: objective[lr])
    return best, objective
