"""TRPO's natural-gradient step (Schulman et al. 2015, Appendix C): conjugate gradient on
Fisher-vector products (Hessian-vector products of the mean KL), a step scaled to the KL radius,
and a backtracking line search that keeps the surrogate improving and the KL inside the radius.
Used by MAML-TRPO's meta-update, where both functions go through the inner adaptation step.

Everything runs on the parameters' device. The conjugate gradient never waits for it (its stopping test
stays on the device); the step reads the surrogate back once, and the line search reads each candidate's
surrogate and KL (it accepts the first good one, usually the first: testing all ``ls_steps`` candidates
without reading back would cost that many evaluations of the meta-objective).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from reml.core.nets import Weights


def flatten(tensors: dict[str, Tensor] | tuple[Tensor, ...]) -> Tensor:
    values = tensors.values() if isinstance(tensors, dict) else tensors
    return torch.cat([t.reshape(-1) for t in values])


def unflatten(vector: Tensor, like: Weights) -> Weights:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = vector[start : start + t.numel()].view_as(t)
        start += t.numel()
    return out


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int = 10, tol: float = 1e-10) -> Tensor:
    """Approximately solve A x = b for a symmetric positive definite A given by ``matvec``, stopping once
    the residual r·r falls below ``tol``.

    On a GPU the stopping test stays on the device (no host sync per iteration): once it holds, x is
    frozen (``torch.where``) and the remaining iterations are computed and discarded, so x is exactly
    what an early exit returns. On the CPU, where reading it costs nothing, the loop exits early."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    done = torch.zeros((), dtype=torch.bool, device=b.device)
    for _ in range(iters):
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x = torch.where(done, x, x + alpha * p)
        r = r - alpha * ap
        new_rr = r @ r
        done = done | (new_rr < tol)
        p = r + (new_rr / rr) * p
        rr = new_rr
        if b.device.type == "cpu" and bool(done):  # reading it is free on the CPU: skip the wasted products
            break
    return x


@dataclass(frozen=True)
class TrpoStats:
    surrogate_before: float
    surrogate_after: float
    kl: float
    backtracks: int  # line-search backtracks taken (each scales the step by ls_ratio); -1: no step accepted


def trpo_step(
    params: Weights,
    objectives: Callable[[Weights], tuple[Tensor, Tensor]],
    max_kl: float = 0.01,
    damping: float = 1e-5,
    cg_iters: int = 10,
    ls_steps: int = 15,
    ls_ratio: float = 0.8,
) -> tuple[Weights, TrpoStats]:
    """One TRPO update of ``params``. ``objectives(p)`` returns (surrogate loss to minimise, mean KL
    from the policy that collected the data); both must be differentiable twice in ``p``."""
    theta = {k: v.detach().requires_grad_() for k, v in params.items()}
    loss, kl = objectives(theta)  # one graph for both (for MAML it runs the inner step)
    grads = flatten(torch.autograd.grad(loss, list(theta.values()), retain_graph=True))
    kl_grads = flatten(torch.autograd.grad(kl, list(theta.values()), create_graph=True))

    def fisher_vector(v: Tensor) -> Tensor:
        hv = torch.autograd.grad(kl_grads @ v, list(theta.values()), retain_graph=True)
        return flatten(hv) + damping * v

    direction = conjugate_gradient(fisher_vector, grads, cg_iters)
    shs = 0.5 * direction @ fisher_vector(direction)
    step = direction * torch.sqrt(max_kl / shs.clamp(min=1e-12))  # 0.5 s'Fs = max_kl at the full step
    old = flatten({k: v.detach() for k, v in params.items()})
    before = float(loss.detach())
    with torch.no_grad():
        for j in range(ls_steps):
            candidate = unflatten(old - ls_ratio**j * step, params)
            new_loss, new_kl = objectives(candidate)
            if float(new_loss) < before and float(new_kl) <= max_kl:
                return candidate, TrpoStats(before, float(new_loss), float(new_kl), j)
    return {k: v.detach() for k, v in params.items()}, TrpoStats(before, before, 0.0, -1)
