"""Reptile (Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms", Alg. 2).

Batched version: for each task of a meta-batch, run ``inner_steps`` SGD steps from θ on the task's
points, giving φ_i; then move θ toward their mean, θ ← θ + ε_t (mean_i φ_i − θ), with ε annealed
linearly from ``outer_lr`` to 0 as in the paper's sinusoid demo. No second derivatives are needed;
the inner loops of the whole meta-batch run in one ``vmap``, on the device of θ and the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import vmap

from reml.core.harness import Adaptation, Loss, Model, adapt, mse
from reml.core.nets import Weights
from reml.core.tasks import TaskSet
from reml.methods.config import ReptileConfig


def reptile_step(
    model: Model,
    params: Weights,
    batch: TaskSet,
    inner_lr: float,
    inner_steps: int,
    outer_lr: float,
    loss: Loss = mse,
) -> tuple[Weights, Tensor]:
    """One Reptile update from a meta-batch; returns (new θ, mean post-adaptation query loss).

    Only the support points drive the update; the query points are scored for the training curve.
    """

    inner = Adaptation("sgd", inner_lr, inner_steps)

    def task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> tuple[Weights, Tensor]:
        adapted = adapt(model, params, sx, sy, inner, loss, first_order=True)
        return adapted, loss(model(adapted, qx), qy)

    adapted, query_loss = vmap(task)(batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    new = {k: p + outer_lr * (adapted[k].mean(dim=0) - p) for k, p in params.items()}  # adapted: (B, ...)
    return new, query_loss.mean()


class Reptile:
    """Reptile's meta-training state: the shared initialisation, moved toward the mean of the adapted
    weights of one fresh meta-batch per :meth:`step`, with ε annealed linearly to 0 over ``cfg.iterations``."""

    def __init__(self, model: Model, init: Weights, cfg: ReptileConfig, loss: Loss) -> None:
        self.model, self.cfg, self.loss = model, cfg, loss
        self.params = init

    def step(self, batch: TaskSet, iteration: int) -> Tensor:
        """The update of meta-iteration ``iteration`` (1-based); returns the batch's post-adaptation query
        loss as a 0-d tensor on the parameters' device (read by the log once per window, not every step)."""
        c = self.cfg
        epsilon = c.outer_lr * (1 - (iteration - 1) / c.iterations)  # linear annealing to 0
        with torch.no_grad():  # first order: no graph is needed
            self.params, query_loss = reptile_step(self.model, self.params, batch, c.inner_lr, c.inner_steps, epsilon,
                                                   self.loss)  # fmt: skip
        return query_loss

    def weights(self) -> Weights:
        return self.params
