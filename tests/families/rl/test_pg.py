"""Policy-gradient adaptation: discounted returns by hand, the linear feature baseline against numpy,
each task's own REINFORCE step, and the second-order meta-gradient against finite differences."""

import numpy as np
import pytest
import torch

from reml.core.seeding import generator
from reml.families.rl.pg import (
    TaskBatch,
    baseline_features,
    discounted_returns,
    fit_baseline,
    reinforce_loss,
    reinforce_step,
)
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.trpo import flatten
from tests.families.rl.helpers import toy_rollouts


def test_discounted_returns_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the episode ended after three steps
    out = discounted_returns(rewards, mask, gamma=0.5)
    assert torch.allclose(out, torch.tensor([[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0, 0.0]]))


def test_linear_baseline_matches_numpy_least_squares():
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 3, 6, 4, generator=gen) * 5
    targets = torch.randn(2, 3, 6, generator=gen)
    mask = torch.ones(2, 3, 6)
    mask[1, 2, 4:] = 0  # one shorter episode
    fitted = fit_baseline(obs, targets, mask)
    features = baseline_features(obs, mask).numpy()
    for t in range(2):
        keep = mask[t].numpy().reshape(-1) > 0
        f = features[t].reshape(-1, features.shape[-1])[keep]
        y = targets[t].numpy().reshape(-1)[keep]
        ridge = np.sqrt(1e-5) * np.eye(f.shape[1])  # the same ridge, as extra least-squares rows
        coeffs = np.linalg.lstsq(np.vstack([f, ridge]), np.concatenate([y, np.zeros(f.shape[1])]), rcond=None)[0]
        assert np.allclose(fitted[t].numpy().reshape(-1)[keep], f @ coeffs, atol=1e-4)
    assert (fitted[1, 2, 4:] == 0).all()


def test_adapt_takes_each_tasks_own_gradient_step():
    policy = GaussianPolicy(2, 2, hidden=(8,))
    params = policy.init(generator(0, "t"))
    batch = TaskBatch.of(toy_rollouts(), gamma=0.9)
    adapted = reinforce_step(policy, params, batch, lr=0.1)
    for t in range(3):
        one = TaskBatch(*(x[t : t + 1] for x in batch))
        p = {k: v.clone().requires_grad_() for k, v in params.items()}
        grads = torch.autograd.grad(reinforce_loss(policy, p, one).sum(), list(p.values()))
        for (name, value), g in zip(params.items(), grads, strict=True):
            assert torch.allclose(adapted[name][t], value - 0.1 * g, atol=1e-6)
    again = reinforce_step(policy, adapted, batch, lr=0.1, per_task=True)  # a second step from per-task parameters
    assert again["0.weight"].shape == (3, 8, 2) and not torch.equal(again["0.weight"], adapted["0.weight"])


def test_second_order_meta_gradient_differs_from_first_order():
    policy = GaussianPolicy(2, 2, hidden=(8,))
    params = {k: v.requires_grad_() for k, v in policy.init(generator(0, "t")).items()}
    batch = TaskBatch.of(toy_rollouts(), gamma=0.9)
    valid = TaskBatch.of(toy_rollouts(seed=1), gamma=0.9)

    def meta_grad(first_order):
        new = reinforce_step(policy, params, batch, lr=0.5, first_order=first_order)
        loss = reinforce_loss(policy, new, valid, per_task=True).mean()
        return flatten(torch.autograd.grad(loss, list(params.values())))

    second, first = meta_grad(False), meta_grad(True)
    assert torch.isfinite(second).all() and not torch.allclose(second, first, atol=1e-6)


def test_second_order_meta_gradient_matches_finite_differences():
    """d/dθ of the post-adaptation loss L(θ − α∇L_inner(θ)) against central differences (float64)."""
    policy = GaussianPolicy(2, 2, hidden=(4,))
    params = {k: v.double() for k, v in policy.init(generator(0, "t")).items()}
    batch = TaskBatch(*(x.double() for x in TaskBatch.of(toy_rollouts(n_tasks=2), gamma=0.9)))
    valid = TaskBatch(*(x.double() for x in TaskBatch.of(toy_rollouts(n_tasks=2, seed=1), gamma=0.9)))

    def meta_loss(p):
        return reinforce_loss(policy, reinforce_step(policy, p, batch, lr=0.5), valid, per_task=True).sum()

    theta = {k: v.clone().requires_grad_() for k, v in params.items()}
    grads = torch.autograd.grad(meta_loss(theta), list(theta.values()))
    analytic = {k: g for k, g in zip(theta, grads, strict=True)}
    eps = 1e-6
    for key, index in (("0.weight", (1, 0)), ("1.bias", (1,)), ("log_std", (0,))):
        plus = {k: v.clone() for k, v in params.items()}
        minus = {k: v.clone() for k, v in params.items()}
        plus[key][index] += eps
        minus[key][index] -= eps
        numeric = (meta_loss(plus) - meta_loss(minus)) / (2 * eps)
        assert float(analytic[key][index]) == pytest.approx(float(numeric), rel=1e-5, abs=1e-8)
