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


def early_exit_conjugate_gradient(matvec, b, iters, tol=1e-10):
    """The conjugate gradient with a host-side early exit (what :func:`conjugate_gradient` replaced)."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        new_rr = r @ r
        if new_rr < tol:
            break
        p = r + (new_rr / rr) * p
        rr = new_rr
    return x


@pytest.mark.parametrize("iters", [3, 6, 30])  # stopped by iters, converged on the last one, converged early
def test_conjugate_gradient_stops_on_the_device_exactly_as_an_early_exit(iters):
    """The stopping test stays on the device: x is frozen, not the loop cut short, with the same bits."""
    gen = torch.Generator().manual_seed(1)
    m = torch.randn(6, 6, generator=gen)
    a = m @ m.T + torch.eye(6)
    b = torch.randn(6, generator=gen)
    x = conjugate_gradient(lambda v: a @ v, b, iters=iters)
    assert torch.equal(x, early_exit_conjugate_gradient(lambda v: a @ v, b, iters))
    assert torch.isfinite(x).all()


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
