"""The batched rollout sampler: deterministic, independent of workers and pinning, episodes masked after they end."""

import os

import numpy as np
import pytest
import torch

from reml.core.seeding import generator
from reml.families.rl.navigation import NAVIGATION2D
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.sampler import Sampler, worker_cores


def test_sampler_is_deterministic_and_independent_of_workers_and_pinning():
    policy = GaussianPolicy(2, 2)
    params = policy.init(generator(0, "t"))
    tasks = NAVIGATION2D.sample_tasks(3, seed=0)
    with Sampler(NAVIGATION2D, 4, workers=1) as one, Sampler(NAVIGATION2D, 4, workers=2) as two:
        a = one.sample(policy, params, tasks, 2, generator(1, "s"))
        b = two.sample(policy, params, tasks, 2, generator(1, "s"))
    ours = os.sched_getaffinity(0)
    with Sampler(NAVIGATION2D, 4, workers=2, pin_workers=True) as pinned:
        p = pinned.sample(policy, params, tasks, 2, generator(1, "s"))
        assert pinned.cores() == [{core} for core in worker_cores(2, True)]  # one core each, as planned
    assert os.sched_getaffinity(0) == ours  # only the workers are pinned
    with Sampler(NAVIGATION2D, 6) as wider:  # one round instead of two: equal up to float rounding
        c = wider.sample(policy, params, tasks, 2, generator(1, "s"))
    assert a.observations.shape == (3, 2, 100, 2)
    for name in ("observations", "actions", "rewards", "mask"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
        assert torch.equal(getattr(a, name), getattr(p, name)), name
        assert torch.allclose(getattr(a, name), getattr(c, name), atol=1e-5), name
    # the first reward is minus the distance from the first position to the goal
    first = 0.1 * np.clip(a.actions[:, :, 0].numpy(), -1, 1)  # normalised actions, scaled to the velocity
    expected = -np.linalg.norm(first - tasks[:, None, :], axis=-1)
    assert np.allclose(a.rewards[:, :, 0].numpy(), expected, atol=1e-5)


def test_worker_processes_step_the_configured_control_interval():
    """frame_skip reaches the environments in the worker processes: two workers give the in-process
    sampler's rollouts at rllab's interval, and those differ from v5's default interval."""
    from reml.families.rl import rl_family

    rllab, v5 = rl_family("cheetah_dir", 1), rl_family("cheetah_dir")
    policy = GaussianPolicy(17, 6)
    params = policy.init(generator(0, "t"))
    tasks = rllab.sample_tasks(2, seed=0)
    with Sampler(rllab, 2, workers=1) as one, Sampler(rllab, 2, workers=2) as two, Sampler(v5, 2) as default:
        a = one.sample(policy, params, tasks, 1, generator(1, "s"))
        b = two.sample(policy, params, tasks, 1, generator(1, "s"))
        c = default.sample(policy, params, tasks, 1, generator(1, "s"))
    assert torch.equal(a.observations, b.observations) and torch.equal(a.rewards, b.rewards)
    assert torch.equal(a.observations[:, :, 0], c.observations[:, :, 0])  # the same reset state
    assert not torch.allclose(a.observations[:, :, 1:], c.observations[:, :, 1:])  # then 0.01 s vs 0.05 s steps


def test_worker_cores_are_one_each_from_the_allowed_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5, 3})
    assert worker_cores(2, True) == worker_cores(2, "auto") == [3, 5]
    assert worker_cores(3, True) == [3, 5, 3]
    assert worker_cores(3, "auto") == [None] * 3  # not exactly as many as the cores: left to the OS
    assert worker_cores(2, False) == [None] * 2
    assert worker_cores(1, True) == [None]  # one worker runs in the calling process


def test_sampler_masks_the_steps_after_an_episode_ends():
    """A policy heading straight for the goal ends its episode there; later steps are masked."""
    policy = GaussianPolicy(2, 2, hidden=(1,))
    params = {k: torch.zeros_like(v) for k, v in policy.init(generator(0, "t")).items()}
    params["1.bias"] = torch.tensor([1.0, 0.0])  # the largest normalised action: 0.1 per step
    params["log_std"] = torch.full((2,), -30.0)  # (almost) deterministic
    tasks = np.array([[0.3, 0.0]])
    with Sampler(NAVIGATION2D, 2) as sampler:
        out = sampler.sample(policy, params, tasks, 2, generator(0, "s"))
    assert out.mask[0, 0].tolist() == [1.0] * 3 + [0.0] * 97
    assert out.returns[0, 0].item() == pytest.approx(-(0.2 + 0.1 + 0.0), abs=1e-5)
