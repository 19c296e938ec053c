"""TRPO's natural-gradient step: conjugate gradient against a direct solve, the line search in the KL radius."""

import pytest
import torch

from reml.core.seeding import generator
from reml.families.rl.pg import TaskBatch
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.trpo import conjugate_gradient, trpo_step
from tests.families.rl.helpers import toy_rollouts


def test_conjugate_gradient_solves_a_small_spd_system():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=20)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)


def test_trpo_step_improves_the_surrogate_within_the_kl_radius():
    policy = GaussianPolicy(2, 2, hidden=(8,))
    params = policy.init(generator(0, "t"))
    data = toy_rollouts(n_tasks=1, n_rollouts=16, horizon=10)
    batch = TaskBatch.of(data, gamma=0.9)
    with torch.no_grad():
        old_log_prob = policy.log_prob(params, data.observations, data.actions)
        old = (policy.mean(params, data.observations), params["log_std"])

    def objectives(p):
        ratio = torch.exp(policy.log_prob(p, data.observations, data.actions) - old_log_prob)
        surrogate = -(ratio * batch.advantages).mean()
        return surrogate, policy.kl(old, p, data.observations).mean()

    new, stats = trpo_step(params, objectives, max_kl=0.01)
    assert stats.backtracks >= 0 and stats.surrogate_after < stats.surrogate_before
    surrogate, kl = objectives(new)
    assert 0 < float(kl) <= 0.01 and float(surrogate) == pytest.approx(stats.surrogate_after, rel=1e-5)
