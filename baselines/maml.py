"""MAML and first-order MAML (Finn, Abbeel & Levine 2017, Alg. 2), vmapped over the meta-batch.

The inner loop is ``steps`` SGD steps with step size α on a task's support set; the meta-objective is
the query loss of the adapted parameters, averaged over tasks (Eq. 1 of the paper):

    min_θ  1/B Σ_i  L_query,i( θ − α ∇_θ L_support,i(θ) )

``torch.func.grad`` of that objective differentiates through the inner update (second order, the
Hessian-vector products of Eq. 1); ``first_order=True`` detaches the inner gradient, which drops
them (FOMAML, Sec. 5.2). The whole meta-batch goes through one ``vmap`` instead of a loop over tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor
from torch.func import grad, grad_and_value, vmap

from reml.harness import Loss, mse
from reml.nets import Params
from reml.tasks.base import TaskDistribution, TaskSet
from reml.traininglog import TrainingLog, training_loop

Model = Callable[[Params, Tensor], Tensor]


class Network(Protocol):
    """A functional network that can draw its own initial parameters (``reml.nets.MLP``, ``reml.convnet.ConvNet``)."""

    def init(self, generator: torch.Generator) -> Params: ...

    def __call__(self, params: Params, x: Tensor) -> Tensor: ...


def inner_adapt(
    model: Model,
    params: Params,
    x: Tensor,
    y: Tensor,
    lr: float,
    steps: int,
    first_order: bool = False,
    loss: Loss = mse,
) -> Params:
    """``steps`` SGD steps on one task's (x (K, d_in), y (K, d_out)); differentiable unless first order."""
    loss_grad = grad(lambda p: loss(model(p, x), y))
    for _ in range(steps):
        g = loss_grad(params)
        if first_order:  # stop the meta-gradient from flowing through the inner gradient
            g = {k: v.detach() for k, v in g.items()}
        params = {k: p - lr * g[k] for k, p in params.items()}
    return params


def maml_meta_loss(
    model: Model, params: Params, batch: TaskSet, lr: float, steps: int, first_order: bool, loss: Loss = mse
) -> Tensor:
    """Mean post-adaptation query loss over a meta-batch of tasks (support (B, K, ·), query (B, Q, ·))."""

    def task_loss(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
        adapted = inner_adapt(model, params, sx, sy, lr, steps, first_order, loss)
        return loss(model(adapted, qx), qy)

    return vmap(task_loss)(batch.support_x, batch.support_y, batch.query_x, batch.query_y).mean()


def maml_meta_gradient(
    model: Model, params: Params, batch: TaskSet, lr: float, steps: int, first_order: bool, loss: Loss = mse
) -> tuple[Params, Tensor]:
    """(∇_θ meta-loss, meta-loss) for one meta-batch."""
    return grad_and_value(lambda p: maml_meta_loss(model, p, batch, lr, steps, first_order, loss))(params)


def maml_meta_gradient_loop(
    model: Model, params: Params, batch: TaskSet, lr: float, steps: int, first_order: bool, loss: Loss = mse
) -> tuple[Params, Tensor]:
    """Reference implementation of :func:`maml_meta_gradient`: a Python loop over tasks with
    ``torch.autograd.grad(create_graph=True)``. For the tests and the benchmark only: it is the slow,
    obviously-correct way.
    """
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    total = torch.zeros(())
    for i in range(len(batch)):
        adapted = leaves
        for _ in range(steps):
            support_loss = loss(model(adapted, batch.support_x[i]), batch.support_y[i])
            grads = torch.autograd.grad(support_loss, list(adapted.values()), create_graph=not first_order)
            adapted = {k: p - lr * g for (k, p), g in zip(adapted.items(), grads, strict=True)}
        total = total + loss(model(adapted, batch.query_x[i]), batch.query_y[i])
    meta_loss = total / len(batch)
    meta_grads = torch.autograd.grad(meta_loss, list(leaves.values()))
    return dict(zip(leaves, meta_grads, strict=True)), meta_loss.detach()


def train_maml(
    model: Network,
    distribution: TaskDistribution,
    iterations: int,
    meta_batch: int,
    k_support: int,
    k_query: int,
    inner_lr: float,
    inner_steps: int,
    meta_lr: float,
    first_order: bool,
    generator: torch.Generator,
    log_every: int = 100,
    desc: str = "maml",
    loss: Loss = mse,
    log_column: str = "meta_loss",
) -> tuple[Params, TrainingLog]:
    """Meta-train with Adam on the MAML objective; tasks come fresh from ``distribution`` every step.

    The log records the meta-loss (post-adaptation query MSE of the training tasks).
    """
    params = {k: v.requires_grad_() for k, v in model.init(generator).items()}
    optimizer = torch.optim.Adam(params.values(), lr=meta_lr)

    def step(_: int) -> float:
        batch = distribution.sample(meta_batch, k_support, k_query, generator)
        current = {k: v.detach() for k, v in params.items()}  # views: Adam updates them in place
        grads, meta_loss = maml_meta_gradient(model, current, batch, inner_lr, inner_steps, first_order, loss)
        for k, p in params.items():
            p.grad = grads[k]
        optimizer.step()
        return meta_loss.item()

    log = training_loop(iterations, step, TrainingLog(log_column, every=log_every), desc)
    return {k: v.detach() for k, v in params.items()}, log
