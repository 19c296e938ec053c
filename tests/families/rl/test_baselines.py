"""The RL baselines trained with SB3 PPO: the policy reads out exactly, tasks are drawn per episode."""

import numpy as np
import torch

from reml.core.seeding import generator
from reml.families.rl.navigation import NAVIGATION2D
from reml.families.rl.policy import GaussianPolicy


def test_sb3_policy_reads_out_as_the_same_gaussian_policy():
    from stable_baselines3 import PPO

    from reml.families.rl.baselines import TaskSamplingEnv, sb3_params

    env = TaskSamplingEnv(NAVIGATION2D, generator(0, "t"), with_task=True)
    kwargs = {"net_arch": {"pi": [100, 100], "vf": [100, 100]}, "activation_fn": torch.nn.ReLU}
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, device="cpu", policy_kwargs=kwargs)
    policy = GaussianPolicy(4, 2)
    params = sb3_params(model)
    policy.check_params(params)
    obs = torch.randn(5, 4)
    dist = model.policy.get_distribution(obs).distribution
    assert torch.allclose(policy.mean(params, obs), dist.mean, atol=1e-6)
    actions = torch.randn(5, 2)
    assert torch.allclose(policy.log_prob(params, obs, actions), dist.log_prob(actions).sum(-1), atol=1e-5)


def test_task_sampling_env_draws_a_task_per_episode_and_appends_it():
    from reml.families.rl.baselines import TaskSamplingEnv

    env = TaskSamplingEnv(NAVIGATION2D, generator(0, "rl/navigation2d/oracle"), with_task=True)
    expected = NAVIGATION2D.draw(2, generator(0, "rl/navigation2d/oracle")).numpy()
    obs, _ = env.reset(seed=0)
    assert np.allclose(obs, [0, 0, *expected[0]])
    for _ in range(99):
        *_, truncated, _ = env.step(np.zeros(2))
        assert not truncated
    *_, truncated, _ = env.step(np.zeros(2))
    assert truncated  # H = 100
    assert np.allclose(env.reset()[0], [0, 0, *expected[1]])
