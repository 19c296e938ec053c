"""iMAML (Rajeswaran, Finn, Kakade & Levine 2019, "Meta-Learning with Implicit Gradients").

Each task's adapted parameters solve a problem regularised toward the initialisation θ,

    φ*(θ) = argmin_φ  L_support(φ) + λ/2 ‖φ − θ‖²,

approximated by ``inner_steps`` gradient steps from φ = θ (no graph is kept). By the implicit function
theorem the meta-gradient of the query loss is

    d L_query(φ*) / dθ = (I + H/λ)⁻¹ ∇_φ L_query(φ*),   H = ∇²_φ L_support(φ*),

solved by conjugate gradient (sb3-contrib's ``conjugate_gradient_solver``, ``cg_iters`` iterations)
on Hessian-vector products from ``torch.func`` (double backward). CG needs I + H/λ positive definite: λ
above the magnitude of H's most negative eigenvalue (a ReLU net's is about −3 on the tests' sinusoids).
Nothing is differentiated through the inner steps, so memory does not grow with their number: the
reason the method exists. The inner loops of a meta-batch run in one ``vmap``; the solves run task by
task (the solver's early stop is data-dependent control flow, which ``vmap`` cannot batch). The solver
starts from small random noise, drawn from a fixed seed in a forked generator, so results neither
depend on nor disturb the global torch stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sb3_contrib.common.utils import conjugate_gradient_solver
from torch import Tensor
from torch.func import grad, vmap

from reml.core.config import check_positive, check_rate, check_seed
from reml.core.harness import Loss, Model, mse
from reml.core.nets import Weights
from reml.core.tasks import TaskSet


@dataclass(frozen=True)
class ImamlConfig:
    """iMAML's settings (Rajeswaran et al.'s Omniglot runs: λ 0.5-2, 5 CG steps, 16-25 inner steps)."""

    seed: int
    iterations: int  # meta-updates
    meta_batch: int  # tasks per meta-update
    inner_lr: float  # step size of the inner gradient steps on the regularised support loss
    inner_steps: int  # inner steps (memory does not grow with them)
    lam: float  # λ, the strength of the pull toward θ
    cg_iters: int  # conjugate-gradient iterations for (I + H/λ)⁻¹ v
    meta_lr: float  # Adam step size of the meta-update

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "iterations", "meta_batch", "inner_steps", "cg_iters")
        check_rate("inner_lr", self.inner_lr)
        check_rate("lam", self.lam)
        check_rate("meta_lr", self.meta_lr)


def _flat(tensors: Weights) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors.values()])


def _shaped(vector: Tensor, like: Weights) -> Weights:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = vector[start : start + t.numel()].view_as(t)
        start += t.numel()
    return out


def inner_solve(
    model: Model, theta: Weights, support_x: Tensor, support_y: Tensor, lam: float, lr: float, steps: int,
    loss: Loss = mse,
) -> Weights:  # fmt: skip
    """φ after ``steps`` gradient steps on L_support(φ) + λ/2 ‖φ − θ‖² from φ = θ (one task)."""
    support_grad = grad(lambda p: loss(model(p, support_x), support_y))
    phi = theta
    for _ in range(steps):
        g = support_grad(phi)
        phi = {k: v - lr * (g[k] + lam * (v - theta[k])) for k, v in phi.items()}
    return phi


def implicit_gradient(
    model: Model, phi: Weights, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor,
    lam: float, cg_iters: int, loss: Loss = mse,
) -> tuple[Weights, Tensor]:  # fmt: skip
    """(I + H/λ)⁻¹ ∇_φ L_query(φ) for one task by conjugate gradient, and L_query(φ)."""
    phi = {k: v.detach() for k, v in phi.items()}
    query_loss, query_grad = loss(model(phi, query_x), query_y), grad(lambda p: loss(model(p, query_x), query_y))(phi)
    support_grad = grad(lambda p: loss(model(p, support_x), support_y))

    def matvec(x: Tensor) -> Tensor:  # x + H x / λ, H x by differentiating ∇L_support · x (double backward)
        direction = _shaped(x, phi)
        hx = grad(lambda p: sum((g * direction[k]).sum() for k, g in support_grad(p).items()))(phi)
        return x + _flat(hx) / lam

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the solver's starting noise
        solution = conjugate_gradient_solver(matvec, _flat(query_grad), max_iter=cg_iters)
    return _shaped(solution, phi), query_loss.detach()


def imaml_meta_gradient(model: Model, theta: Weights, batch: TaskSet, cfg: ImamlConfig,
                        loss: Loss = mse) -> tuple[Weights, Tensor]:  # fmt: skip
    """(mean implicit meta-gradient over the meta-batch, mean post-adaptation query loss)."""
    theta = {k: v.detach() for k, v in theta.items()}
    phis = vmap(lambda sx, sy: inner_solve(model, theta, sx, sy, cfg.lam, cfg.inner_lr, cfg.inner_steps, loss))(
        batch.support_x, batch.support_y)  # fmt: skip
    total = {k: torch.zeros_like(v) for k, v in theta.items()}
    losses = []
    for i in range(len(batch)):
        g, query_loss = implicit_gradient(model, {k: v[i] for k, v in phis.items()}, batch.support_x[i],
                                          batch.support_y[i], batch.query_x[i], batch.query_y[i], cfg.lam,
                                          cfg.cg_iters, loss)  # fmt: skip
        total = {k: total[k] + g[k] for k in total}
        losses.append(query_loss)
    return {k: v / len(batch) for k, v in total.items()}, torch.stack(losses).mean()


class Imaml:
    """iMAML's meta-training state: the initialisation θ, updated by Adam on the implicit meta-gradient of
    one fresh meta-batch per :meth:`step`, on the device of ``init``."""

    def __init__(self, model: Model, init: Weights, cfg: ImamlConfig, loss: Loss) -> None:
        self.model, self.cfg, self.loss = model, cfg, loss
        self.params = {k: v.requires_grad_() for k, v in init.items()}
        self.optimizer = torch.optim.Adam(self.params.values(), lr=cfg.meta_lr)

    def step(self, batch: TaskSet, iteration: int) -> Tensor:
        """One meta-update; returns the batch's post-adaptation query loss (a 0-d tensor)."""
        grads, query_loss = imaml_meta_gradient(self.model, self.params, batch, self.cfg, self.loss)
        for k, p in self.params.items():
            p.grad = grads[k]
        self.optimizer.step()
        return query_loss

    def weights(self) -> Weights:
        return {k: v.detach() for k, v in self.params.items()}
