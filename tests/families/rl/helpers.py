"""What the meta-RL tests share."""

import torch

from reml.families.rl.sampler import Rollouts


def toy_rollouts(n_tasks=3, n_rollouts=4, horizon=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(n_tasks, n_rollouts, horizon, 2, generator=gen)
    actions = torch.randn(n_tasks, n_rollouts, horizon, 2, generator=gen)
    rewards = -obs.norm(dim=-1) + 0.1 * actions[..., 0]
    return Rollouts(obs, actions, rewards, torch.ones(n_tasks, n_rollouts, horizon))
