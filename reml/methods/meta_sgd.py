"""Meta-SGD (Li, Zhou, Chen & Li 2017, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning"):
MAML with a learned step size for every parameter, vmapped over the meta-batch.

The inner update is θ' = θ − α ∘ ∇_θ L_support(θ), where α has θ's shape (one step size per weight,
unconstrained: its sign can flip a direction) and is learned with θ on the meta-objective (Alg. 1):

    min_{θ, α}  1/B Σ_i  L_query,i( θ − α ∘ ∇_θ L_support,i(θ) )

``torch.func.grad`` of that objective differentiates through the inner update with respect to both θ
and α. α starts at ``alpha_init`` everywhere, so the first meta-step is MAML's with α = alpha_init. At
test a task is adapted with the learned α, not with a tuned scalar step size: the harness's SGD with a
per-parameter step (:func:`meta_sgd_updates`). Any family whose tasks are a
:class:`~reml.core.tasks.TaskSet` can use it; everything runs on the device of θ and the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import grad, grad_and_value, vmap

from reml.core.config import check_positive, check_rate, check_seed
from reml.core.harness import Loss, Model, mse
from reml.core.nets import Weights
from reml.core.tasks import TaskSet


@dataclass(frozen=True)
class MetaSgdConfig:
    """Meta-SGD's settings; α is learned, ``alpha_init`` is only where it starts."""

    seed: int
    iterations: int  # meta-updates
    meta_batch: int  # tasks per meta-update
    alpha_init: float  # every per-parameter step size at the start (MAML's α: 0.01 on sinusoids)
    inner_steps: int  # inner steps with the learned α during meta-training (Li et al.: 1)
    meta_lr: float  # Adam step size of the meta-update, for θ and α alike (Li et al.: 0.001)

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "iterations", "meta_batch", "inner_steps")
        check_rate("alpha_init", self.alpha_init)
        check_rate("meta_lr", self.meta_lr)


def meta_sgd_updates(
    model: Model, params: Weights, alpha: Weights, support_x: Tensor, support_y: Tensor, steps: int,
    loss: Loss = mse,
) -> Iterator[Weights]:  # fmt: skip
    """The parameters after each of ``steps`` updates θ ← θ − α ∘ ∇L_support(θ) on one task (new tensors;
    differentiable in ``params`` and ``alpha``)."""
    support_grad = grad(lambda p: loss(model(p, support_x), support_y))
    for _ in range(steps):
        g = support_grad(params)
        params = {k: v - alpha[k] * g[k] for k, v in params.items()}
        yield params


def meta_sgd_adapt(
    model: Model, params: Weights, alpha: Weights, support_x: Tensor, support_y: Tensor, steps: int,
    loss: Loss = mse,
) -> Weights:  # fmt: skip
    final = params
    for final in meta_sgd_updates(model, params, alpha, support_x, support_y, steps, loss):  # noqa: B007
        pass
    return final


def meta_sgd_meta_loss(
    model: Model, params: Weights, alpha: Weights, batch: TaskSet, steps: int, loss: Loss = mse
) -> Tensor:
    """Mean post-adaptation query loss over a meta-batch (support (B, K, ·), query (B, Q, ·))."""

    def task_loss(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
        return loss(model(meta_sgd_adapt(model, params, alpha, sx, sy, steps, loss), qx), qy)

    return vmap(task_loss)(batch.support_x, batch.support_y, batch.query_x, batch.query_y).mean()


def meta_sgd_meta_gradient(
    model: Model, params: Weights, alpha: Weights, batch: TaskSet, steps: int, loss: Loss = mse
) -> tuple[Weights, Weights, Tensor]:
    """(∇_θ meta-loss, ∇_α meta-loss, meta-loss) for one meta-batch."""
    (g_theta, g_alpha), value = grad_and_value(
        lambda p, a: meta_sgd_meta_loss(model, p, a, batch, steps, loss), argnums=(0, 1)
    )(params, alpha)
    return g_theta, g_alpha, value


def meta_sgd_meta_gradient_loop(
    model: Model, params: Weights, alpha: Weights, batch: TaskSet, steps: int, loss: Loss = mse
) -> tuple[Weights, Weights, Tensor]:
    """The same by a Python loop over tasks with ``torch.autograd.grad(create_graph=True)``: the
    obviously-correct reference of the tests."""
    theta = {k: v.detach().requires_grad_() for k, v in params.items()}
    rates = {k: v.detach().requires_grad_() for k, v in alpha.items()}
    total = torch.zeros((), device=batch.query_x.device)
    for i in range(len(batch)):
        adapted = theta
        for _ in range(steps):
            support_loss = loss(model(adapted, batch.support_x[i]), batch.support_y[i])
            grads = torch.autograd.grad(support_loss, list(adapted.values()), create_graph=True)
            adapted = {k: v - rates[k] * g for (k, v), g in zip(adapted.items(), grads, strict=True)}
        total = total + loss(model(adapted, batch.query_x[i]), batch.query_y[i])
    meta_loss = total / len(batch)
    grads = torch.autograd.grad(meta_loss, [*theta.values(), *rates.values()])
    n = len(theta)
    return dict(zip(theta, grads[:n], strict=True)), dict(zip(rates, grads[n:], strict=True)), meta_loss.detach()


class MetaSgd:
    """Meta-SGD's meta-training state: the initialisation θ and the step sizes α, both updated by one Adam
    on the meta-gradient of one fresh meta-batch per :meth:`step`, on the device of ``init``."""

    def __init__(self, model: Model, init: Weights, cfg: MetaSgdConfig, loss: Loss) -> None:
        self.model, self.cfg, self.loss = model, cfg, loss
        self.params = {k: v.requires_grad_() for k, v in init.items()}
        self.alpha = {k: torch.full_like(v, cfg.alpha_init).requires_grad_() for k, v in init.items()}
        self.optimizer = torch.optim.Adam([*self.params.values(), *self.alpha.values()], lr=cfg.meta_lr)

    def step(self, batch: TaskSet, iteration: int) -> Tensor:
        """One meta-update; returns the meta-loss (post-adaptation query loss of the batch), a 0-d tensor."""
        theta = {k: v.detach() for k, v in self.params.items()}  # views: Adam updates them in place
        alpha = {k: v.detach() for k, v in self.alpha.items()}
        g_theta, g_alpha, meta_loss = meta_sgd_meta_gradient(self.model, theta, alpha, batch, self.cfg.inner_steps,
                                                             self.loss)  # fmt: skip
        for k in self.params:
            self.params[k].grad, self.alpha[k].grad = g_theta[k], g_alpha[k]
        self.optimizer.step()
        return meta_loss.detach()

    def weights(self) -> tuple[Weights, Weights]:
        """(θ, α), detached."""
        return {k: v.detach() for k, v in self.params.items()}, {k: v.detach() for k, v in self.alpha.items()}
