"""Policy-gradient adaptation (the inner step of MAML-RL and every method's test-time fine-tuning):
REINFORCE with a linear feature baseline fitted per task (Finn et al. 2017, Sec. 5.3; the baseline is
rllab's ``LinearFeatureBaseline``, Duan et al. 2016).

Everything runs on the device of the rollouts (:meth:`reml.families.rl.sampler.Rollouts.to`) and the
parameters; the one host sync is the baseline fit's finiteness test (once per batch of rollouts, not per
step; see :func:`fit_baseline`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from reml.core.harness import sgd_step
from reml.core.nets import Weights
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.sampler import Rollouts

RIDGE = 1e-5  # rllab's reg_coeff; raised tenfold (up to 5 times) if the solve is not finite


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """R_t = sum_k gamma^k r_{t+k} within each episode, (..., H) -> (..., H)."""
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = (rewards[..., t] + gamma * running) * mask[..., t]
        out[..., t] = running
    return out


def baseline_features(observations: Tensor, mask: Tensor) -> Tensor:
    """rllab's features [o, o^2, t, t^2, t^3, 1] with o clipped to [-10, 10] and t = step / 100;
    (T, R, H, d) -> (T, R, H, 2d + 4), zero on padded steps so they do not enter the fit."""
    o = observations.double().clamp(-10, 10)
    steps = torch.arange(observations.shape[-2], dtype=torch.float64, device=observations.device) / 100.0
    t = steps.expand(*observations.shape[:-1])[..., None]
    features = torch.cat([o, o**2, t, t**2, t**3, torch.ones_like(t)], dim=-1)
    return features * mask.double()[..., None]


def fit_baseline(observations: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Least squares (with a small ridge) of ``targets`` on the features, one fit per task;
    returns the fitted values (T, R, H). ``targets`` (T, R, H), e.g. the discounted returns. Whether a
    larger ridge is needed is read back from the device after each solve (usually one sync per fit):
    solving for every ridge at once would cost five solves where one almost always suffices."""
    features = baseline_features(observations, mask)
    f = features.flatten(1, 2)  # (T, R*H, F)
    y = (targets.double() * mask.double()).flatten(1)[..., None]  # (T, R*H, 1)
    gram, rhs = f.transpose(1, 2) @ f, f.transpose(1, 2) @ y
    eye = torch.eye(f.shape[-1], dtype=torch.float64, device=f.device)
    ridge = RIDGE
    for _ in range(5):
        coeffs = torch.linalg.solve(gram + ridge * eye, rhs)
        if torch.isfinite(coeffs).all():
            break
        ridge *= 10
    return (features @ coeffs[:, None]).squeeze(-1).float() * mask


def advantages(rollouts: Rollouts, gamma: float) -> Tensor:
    """Discounted return minus the fitted baseline, normalised per task over the steps taken
    (rllab's ``center_adv``), (T, R, H); zero on padded steps."""
    returns = discounted_returns(rollouts.rewards, rollouts.mask, gamma)
    raw = (returns - fit_baseline(rollouts.observations, returns, rollouts.mask)) * rollouts.mask
    n = rollouts.mask.sum(dim=(1, 2), keepdim=True)
    mean = raw.sum(dim=(1, 2), keepdim=True) / n
    var = (((raw - mean) * rollouts.mask) ** 2).sum(dim=(1, 2), keepdim=True) / n
    return (raw - mean) / (var.sqrt() + 1e-8) * rollouts.mask


class TaskBatch(NamedTuple):
    """What a policy-gradient step needs from the rollouts of T tasks: (T, R, H, ...) tensors."""

    observations: Tensor
    actions: Tensor
    advantages: Tensor
    mask: Tensor

    @staticmethod
    def of(rollouts: Rollouts, gamma: float) -> TaskBatch:
        """Stacked over tasks (leading axis T)."""
        adv = advantages(rollouts, gamma)
        return TaskBatch(rollouts.observations, rollouts.actions, adv, rollouts.mask)


def reinforce_loss(policy: GaussianPolicy, params: Weights, batch: TaskBatch, per_task: bool = False) -> Tensor:
    """- mean over the steps taken of log pi(a_t | s_t) A_t; one value per task, (T,)."""
    log_prob = policy.log_prob(params, batch.observations, batch.actions, per_task)
    return -(log_prob * batch.advantages * batch.mask).sum(dim=(1, 2)) / batch.mask.sum(dim=(1, 2))


def reinforce_step(
    policy: GaussianPolicy,
    params: Weights,
    batch: TaskBatch,
    lr: float,
    per_task: bool = False,
    first_order: bool = False,
) -> Weights:
    """One REINFORCE step per task: params - lr * grad, stacked over the T tasks of ``batch``.

    ``params`` are shared or, with ``per_task``, stacked per task (leading axis T). Shared parameters
    are expanded to T copies and the T losses summed, so one backward pass gives every task's own
    gradient. If ``params`` require grad, the step stays differentiable with respect to them (MAML's
    second-order term) unless ``first_order``."""
    n_tasks = batch.observations.shape[0]
    outer = any(v.requires_grad for v in params.values()) and torch.is_grad_enabled()
    with torch.enable_grad():
        expanded = params if per_task else {k: v.expand(n_tasks, *v.shape) for k, v in params.items()}
        inner = expanded if outer else {k: v.detach().clone().requires_grad_() for k, v in expanded.items()}
        losses = reinforce_loss(policy, inner, batch, per_task=True)
        grads = torch.autograd.grad(losses.sum(), list(inner.values()), create_graph=outer and not first_order)
    stepped = sgd_step(expanded, dict(zip(expanded, grads, strict=True)), lr)
    return stepped if outer else {k: v.detach() for k, v in stepped.items()}
