"""Sinusoid REML learns: MaskablePPO composing from a pool with write-back builds better networks.

Small, on purpose: a pool of 2 + 8 + 2 layers of width 20, networks of 4 layers, 8,000 timesteps
(2,000 episodes) per seed. Seeds 0 and 1 are both used; neither was picked for its margin. Measured
when the observation gained the loss and output-scale features: mean query MSE 4.25 -> 3.22 (seed 0),
4.44 -> 3.22 (seed 1), 4.29 -> 2.94 (seed 2, not in the test); at 4,000 timesteps seed 0 had not yet
improved (4.25 -> 4.33), which is why the run is this long.
"""

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO

from reml.core.seeding import configure_torch, generator
from reml.families.sinusoid.reml import RegressionCompositionEnv
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.reml.pool import linear_pool, pool_tensors


def make_env(pool, write_back):
    return RegressionCompositionEnv(
        pool, SinusoidDistribution(), depth=2, k_support=10, k_query=10, write_back=write_back
    )


def mean_loss(pool, model, episodes=150):
    """Mean query MSE of the networks the deterministic policy builds for fresh tasks (pool frozen)."""
    env = make_env(pool, write_back=False)
    env.reset(seed=123)
    losses = []
    for _ in range(episodes):
        obs, _ = env.reset()
        terminated = False
        while not terminated:
            action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
            obs, _, terminated, _, info = env.step(action)
        losses.append(info["loss"])
    return float(np.mean(losses))


def train(seed, timesteps):
    configure_torch()
    initial = linear_pool(1, 20, 1, 2, 8, 2, generator(seed, "reml-learning-test"))
    env = make_env(initial, write_back=True)
    model = MaskablePPO("MlpPolicy", env, n_steps=256, batch_size=64, seed=seed, device="cpu")
    untrained = mean_loss(initial, model)
    model.learn(timesteps)
    return model, env.pool, untrained


@pytest.mark.slow
def test_training_improves_the_built_networks():
    before, after = [], []
    for seed in (0, 1):
        model, pool, untrained = train(seed, 8000)
        before.append(untrained)
        after.append(mean_loss(pool, model))
        assert after[-1] < before[-1], (seed, before[-1], after[-1])
    assert np.mean(after) < 0.9 * np.mean(before), (before, after)


def test_same_seed_same_policy_and_pool():
    (m1, p1, _), (m2, p2, _) = train(3, 512), train(3, 512)
    for a, b in zip(m1.policy.parameters(), m2.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(t, pool_tensors(p2)[n]) for n, t in pool_tensors(p1).items())
