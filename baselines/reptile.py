"""Reptile (Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms", Alg. 2).

Batched version: for each task of a meta-batch, run ``inner_steps`` SGD steps from θ on the task's
points, giving φ_i; then move θ toward their mean, θ ← θ + ε_t (mean_i φ_i − θ), with ε annealed
linearly from ``outer_lr`` to 0 as in the paper's sinusoid demo. No second derivatives are needed;
the inner loops of the whole meta-batch run in one ``vmap``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import vmap

from baselines.maml import Model, Network, inner_adapt
from reml.harness import Loss, mse
from reml.nets import Params
from reml.tasks.base import TaskDistribution, TaskSet
from reml.traininglog import TrainingLog, training_loop


def reptile_step(
    model: Model,
    params: Params,
    batch: TaskSet,
    inner_lr: float,
    inner_steps: int,
    outer_lr: float,
    loss: Loss = mse,
) -> tuple[Params, Tensor]:
    """One Reptile update from a meta-batch; returns (new θ, mean post-adaptation query loss).

    Only the support points drive the update; the query points are scored for the training curve.
    """

    def task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Params, Tensor]:
        adapted = inner_adapt(model, params, sx, sy, inner_lr, inner_steps, first_order=True, loss=loss)
        return adapted, loss(model(adapted, qx), qy)

    adapted, query_loss = vmap(task)(batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    new = {k: p + outer_lr * (adapted[k].mean(dim=0) - p) for k, p in params.items()}  # adapted: (B, ...)
    return new, query_loss.mean()


def train_reptile(
    model: Network,
    distribution: TaskDistribution,
    iterations: int,
    meta_batch: int,
    k_support: int,
    k_query: int,
    inner_lr: float,
    inner_steps: int,
    outer_lr: float,
    generator: torch.Generator,
    log_every: int = 100,
    desc: str = "reptile",
    loss: Loss = mse,
    log_column: str = "meta_loss",
) -> tuple[Params, TrainingLog]:
    """Meta-train with Reptile; the log records the post-adaptation query loss of the training tasks."""
    params = model.init(generator)

    def step(it: int) -> float:
        nonlocal params
        batch = distribution.sample(meta_batch, k_support, k_query, generator)
        epsilon = outer_lr * (1 - (it - 1) / iterations)  # linear annealing to 0
        params, query_loss = reptile_step(model, params, batch, inner_lr, inner_steps, epsilon, loss)
        return query_loss.item()

    with torch.no_grad():
        log = training_loop(iterations, step, TrainingLog(log_column, every=log_every), desc)
    return params, log
