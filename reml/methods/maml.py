"""MAML and first-order MAML (Finn, Abbeel & Levine 2017, Alg. 2), vmapped over the meta-batch.

The inner loop is ``steps`` SGD steps with step size α on a task's support set (the harness's own
update rule, :func:`reml.core.harness.updates`); the meta-objective is the query loss of the adapted
parameters, averaged over tasks (Eq. 1 of the paper):

    min_θ  1/B Σ_i  L_query,i( θ − α ∇_θ L_support,i(θ) )

``torch.func.grad`` of that objective differentiates through the inner update (second order, the
Hessian-vector products of Eq. 1); ``first_order=True`` detaches the inner gradient, which drops
them (FOMAML, Sec. 5.2). The whole meta-batch goes through one ``vmap`` instead of a loop over tasks.
Any family whose tasks are a :class:`~reml.core.tasks.TaskSet` can use it (sinusoids, classification).
Everything runs on the device of the parameters and the batch; meta-batches are drawn on the CPU
(:class:`MetaBatches`) and moved by the caller (:func:`reml.methods.meta_learners.meta_train`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import grad_and_value, vmap

from reml.core.harness import Adaptation, Loss, Model, adapt, mse, sgd_step
from reml.core.nets import Weights
from reml.core.tasks import TaskDistribution, TaskSet
from reml.methods.config import MamlConfig


@dataclass(frozen=True)
class MetaBatches:
    """Where meta-training tasks come from: ``size`` fresh tasks per meta-update, each with ``k_support``
    support and ``k_query`` query examples, drawn from ``distribution`` by ``generator`` only (so the
    fixed validation and test tasks are never seen). Batches are drawn on the CPU, the generator's device."""

    distribution: TaskDistribution
    size: int
    k_support: int
    k_query: int
    generator: torch.Generator

    def sample(self) -> TaskSet:
        return self.distribution.sample(self.size, self.k_support, self.k_query, self.generator)


def maml_meta_loss(
    model: Model, params: Weights, batch: TaskSet, lr: float, steps: int, first_order: bool, loss: Loss = mse
) -> Tensor:
    """Mean post-adaptation query loss over a meta-batch of tasks (support (B, K, ·), query (B, Q, ·))."""

    inner = Adaptation("sgd", lr, steps)

    def task_loss(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
        adapted = adapt(model, params, sx, sy, inner, loss, first_order)
        return loss(model(adapted, qx), qy)

    return vmap(task_loss)(batch.support_x, batch.support_y, batch.query_x, batch.query_y).mean()


def maml_meta_gradient(
    model: Model, params: Weights, batch: TaskSet, lr: float, steps: int, first_order: bool, loss: Loss = mse
) -> tuple[Weights, Tensor]:
    """(∇_θ meta-loss, meta-loss) for one meta-batch."""
    return grad_and_value(lambda p: maml_meta_loss(model, p, batch, lr, steps, first_order, loss))(params)


def maml_meta_gradient_loop(
    model: Model, params: Weights, batch: TaskSet, lr: float, steps: int, first_order: bool, loss: Loss = mse
) -> tuple[Weights, Tensor]:
    """The same as :func:`maml_meta_gradient` by a Python loop over tasks with
    ``torch.autograd.grad(create_graph=True)``: the obviously-correct reference of the tests (equal to
    float64 precision), and the faster of the two for conv nets of 32 filters and more on the CPU
    (:func:`reml.families.classification.baselines.meta_gradient_for`); slower for small MLPs.
    """
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    total = torch.zeros((), device=batch.query_x.device)
    for i in range(len(batch)):
        adapted = leaves
        for _ in range(steps):
            support_loss = loss(model(adapted, batch.support_x[i]), batch.support_y[i])
            grads = torch.autograd.grad(support_loss, list(adapted.values()), create_graph=not first_order)
            adapted = sgd_step(adapted, dict(zip(adapted, grads, strict=True)), lr)
        total = total + loss(model(adapted, batch.query_x[i]), batch.query_y[i])
    meta_loss = total / len(batch)
    meta_grads = torch.autograd.grad(meta_loss, list(leaves.values()))
    return dict(zip(leaves, meta_grads, strict=True)), meta_loss.detach()


MetaGradient = Callable[[Model, Weights, TaskSet, float, int, bool, Loss], tuple[Weights, Tensor]]


class Maml:
    """MAML's meta-training state: the shared initialisation, updated by Adam on the meta-gradient of one
    fresh meta-batch per :meth:`step` (``cfg.first_order``: FOMAML), on the device of ``init``."""

    def __init__(
        self, model: Model, init: Weights, cfg: MamlConfig, loss: Loss, meta_gradient: MetaGradient | None = None
    ) -> None:
        self.model, self.cfg, self.loss = model, cfg, loss
        self.meta_gradient = meta_gradient or maml_meta_gradient  # or the loop: the same numbers, another speed
        self.params = {k: v.requires_grad_() for k, v in init.items()}
        self.optimizer = torch.optim.Adam(self.params.values(), lr=cfg.meta_lr)

    def step(self, batch: TaskSet, iteration: int) -> Tensor:
        """One meta-update; returns the meta-loss (the post-adaptation query loss of the batch) as a 0-d
        tensor on the parameters' device, so that a GPU loop is not held up reading it every step."""
        c = self.cfg
        current = {k: v.detach() for k, v in self.params.items()}  # views: Adam updates them in place
        grads, meta_loss = self.meta_gradient(self.model, current, batch, c.inner_lr, c.inner_steps, c.first_order,
                                              self.loss)  # fmt: skip
        for k, p in self.params.items():
            p.grad = grads[k]
        self.optimizer.step()
        return meta_loss.detach()

    def weights(self) -> Weights:
        return {k: v.detach() for k, v in self.params.items()}
