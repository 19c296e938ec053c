"""The RL evaluation harness: each step scored on the episodes it adapts from."""

import torch

from reml.core.seeding import generator
from reml.families.rl.navigation import NAVIGATION2D
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.sampler import Sampler


def test_evaluation_harness_steps_from_the_episodes_it_scores():
    """Step 0 is the start policy's return on the sampled episodes; a zero step size leaves it unchanged."""
    from reml.families.rl.evaluate import adaptation_returns

    policy = GaussianPolicy(2, 2)
    params = policy.init(generator(0, "t"))
    tasks = NAVIGATION2D.sample_tasks(4, 0, stream="test")
    with Sampler(NAVIGATION2D, 8) as sampler:
        curve = adaptation_returns(policy, params, tasks, sampler, (1e-12, 1e-12), 2, 0.99, generator(0, "e"))
        first = sampler.sample(policy, params, tasks, 2, generator(0, "e"))
    assert curve.per_task.shape == (4, 3)
    assert torch.allclose(curve.per_task[:, 0], first.returns.mean(1).double())
    assert torch.isfinite(curve.ci95).all()
    # Each step samples fresh episodes from the same generator; with a ~0 step size the policy stays put,
    # so step s scores exactly the start policy's next draw of episodes.
    rng = generator(0, "e")
    with Sampler(NAVIGATION2D, 8) as sampler:
        draws = [sampler.sample(policy, params, tasks, 2, rng).returns.mean(1).double() for _ in range(3)]
    assert torch.allclose(curve.per_task, torch.stack(draws, dim=1), atol=1e-5)
