"""Batched rollouts: every episode of a meta-batch is run together, not one at a time.

``n_envs`` copies of a family's environment are split over ``workers`` processes with gymnasium's
vector API (``AsyncVectorEnv``; ``SyncVectorEnv`` in-process when ``workers == 1``). Each vector slot
is an :class:`EnvBatch` that steps its share of the copies, so two processes can run hundreds of
episodes. The policy runs once per time step on all episodes at once, in the main process.

Randomness is drawn up front from a ``torch.Generator``: one reset seed and the action noise for
every episode, so a result depends on (seed, tasks, policy, ``n_envs``) and never on ``workers``; a
different ``n_envs`` changes only float rounding (the policy sees batches of another size).

Pinning each worker process to a core of its own (``pin_workers``) made two workers 1.56-1.58x as fast
as one on HalfCheetah on a 2-core machine, against 1.30-1.32x unpinned (docs/benchmarks.md, meta-RL): the
workers no longer migrate between cores at every synchronised step.

Sampling runs on the CPU whatever device the policy trains on: the simulators are CPU code, and the
policy acts beside them (its parameters are copied to the CPU once per :meth:`Sampler.sample`, so no
time step waits for a GPU). :class:`Rollouts` come back on the CPU; :meth:`Rollouts.to` moves them to
the device of the gradient computations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from reml.core.nets import Weights
from reml.families.rl import rl_family
from reml.families.rl.config import SamplerConfig
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.tasks import RLFamily


@dataclass(frozen=True)
class Rollouts:
    """Episodes of T tasks x R rollouts each, padded to the horizon H (``mask`` marks the steps taken)."""

    observations: Tensor  # (T, R, H, obs_dim): the state each action was taken in
    actions: Tensor  # (T, R, H, act_dim): as sampled from the policy (the env clips them)
    rewards: Tensor  # (T, R, H): 0 after the episode ended
    mask: Tensor  # (T, R, H): 1.0 while the episode runs

    @property
    def returns(self) -> Tensor:
        """Undiscounted return of each episode, (T, R)."""
        return (self.rewards * self.mask).sum(-1)

    def task(self, i: int) -> Rollouts:
        """The rollouts of task ``i`` only, keeping a task axis of size 1."""
        return Rollouts(*(t[i : i + 1] for t in (self.observations, self.actions, self.rewards, self.mask)))

    def to(self, device: torch.device) -> Rollouts:
        """The same rollouts on ``device`` (the same tensors where they are already there)."""
        return Rollouts(*(t.to(device) for t in (self.observations, self.actions, self.rewards, self.mask)))


class EnvBatch(gym.Env):
    """``m`` copies of a family's environment in one process. ``assignment`` (tasks (m, P), seeds (m,))
    is set before ``reset``; ``step`` takes (m, act_dim) actions. Per-copy rewards and end flags travel
    in the observation (a vector env keeps one scalar reward per slot); a copy whose episode ended
    stays put and reports reward 0. ``core``: the CPU core to pin the stepping process to, at the
    first reset (``AsyncVectorEnv`` also builds one batch in the calling process, to read its spaces)."""

    def __init__(self, family_name: str, m: int, core: int | None = None, frame_skip: int | None = None) -> None:
        self._core = core
        self.family = rl_family(family_name, frame_skip)
        self.envs = [self.family.make_env() for _ in range(m)]
        single = self.envs[0]
        obs_dim = single.observation_space.shape[0]
        act = single.action_space
        self.observation_space = gym.spaces.Dict({
            "obs": gym.spaces.Box(-np.inf, np.inf, (m, obs_dim), np.float32),
            "reward": gym.spaces.Box(-np.inf, np.inf, (m,), np.float64),
            "done": gym.spaces.Box(0.0, 1.0, (m,), np.float64),
        })  # fmt: skip
        self.action_space = gym.spaces.Box(
            np.tile(act.low, (m, 1)), np.tile(act.high, (m, 1)), (m, act.shape[0]), np.float32
        )
        self.assignment: tuple[np.ndarray, np.ndarray] | None = None
        self._obs = np.zeros((m, obs_dim), np.float32)
        self._done = np.zeros(m)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if self.assignment is None:
            raise RuntimeError("set `assignment` (tasks, seeds) before reset")
        if self._core is not None:
            os.sched_setaffinity(0, {self._core})
            self._core = None
        tasks, seeds = self.assignment
        for i, env in enumerate(self.envs):
            env.set_task(tasks[i])
            self._obs[i] = env.reset(seed=int(seeds[i]))[0]
        self._done[:] = 0.0
        return self._observation(np.zeros(len(self.envs))), {}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        rewards = np.zeros(len(self.envs))
        for i, env in enumerate(self.envs):
            if self._done[i]:
                continue
            obs, rewards[i], terminated, truncated, _ = env.step(action[i])
            self._obs[i] = obs
            self._done[i] = float(terminated or truncated)
        return self._observation(rewards), 0.0, False, False, {}

    def _observation(self, rewards: np.ndarray) -> dict:
        return {"obs": self._obs.copy(), "reward": rewards, "done": self._done.copy()}

    def cores(self) -> set[int]:
        """The CPU cores the process stepping this batch may run on."""
        return os.sched_getaffinity(0)


def worker_cores(workers: int, pin: bool | str) -> list[int | None]:
    """The core to pin each worker process to (``None``: not pinned), taken in order from the cores this
    process may use. ``pin="auto"`` pins when the workers are exactly as many as those cores, so that
    several samplers on a larger machine are not all put on its first cores. One worker runs in-process
    and is never pinned."""
    if workers == 1 or pin is False or not hasattr(os, "sched_getaffinity"):
        return [None] * workers
    cores = sorted(os.sched_getaffinity(0))
    if pin == "auto" and workers != len(cores):
        return [None] * workers
    return [cores[i % len(cores)] for i in range(workers)]


class Sampler:
    """Rollouts of a policy on a family's tasks; close it (or use ``with``) to stop the worker processes."""

    def __init__(self, family: RLFamily, n_envs: int, workers: int = 1, pin_workers: bool | str = False) -> None:
        if workers < 1 or n_envs < workers or n_envs % workers:
            raise ValueError(f"n_envs must be a positive multiple of workers, got workers={workers}, n_envs={n_envs}")
        self.family = family
        self.per_worker = n_envs // workers  # every worker holds the same number of copies
        self.n_envs = n_envs
        fns = [partial(EnvBatch, family.name, self.per_worker, core, family.frame_skip)
               for core in worker_cores(workers, pin_workers)]  # fmt: skip
        self.vec = gym.vector.SyncVectorEnv(fns) if workers == 1 else gym.vector.AsyncVectorEnv(fns)
        probe = family.make_env()
        self.obs_dim = probe.observation_space.shape[0]
        self.act_dim = probe.action_space.shape[0]
        probe.close()

    @classmethod
    def for_job(cls, family: RLFamily, config: SamplerConfig, episodes: int) -> Sampler:
        """A sampler set up by ``rl.sampler`` for jobs of ``episodes`` episodes (see ``envs_for``)."""
        return cls(family, config.envs_for(episodes), config.workers, config.pin_workers)

    def cores(self) -> list[set[int]]:
        """The cores each worker process may run on."""
        return list(self.vec.call("cores"))

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.vec.close()

    def sample(
        self,
        policy: GaussianPolicy,
        params: Weights,
        tasks: np.ndarray,
        n_rollouts: int,
        generator: torch.Generator,
        per_task: bool = False,
        with_task: bool = False,
    ) -> Rollouts:
        """``n_rollouts`` episodes of each of the T ``tasks`` (T, P), actions drawn from the policy.

        ``per_task``: ``params`` are stacked per task (leading axis T), e.g. after adaptation.
        ``with_task``: the task parameters are appended to the observation (the oracle only).
        ``params`` may be on any device: the policy acts on CPU copies, and the rollouts are CPU tensors.
        """
        params = {k: v.cpu() for k, v in params.items()}  # one copy per call, not one per time step
        n_tasks, horizon = len(tasks), self.family.horizon
        total = n_tasks * n_rollouts
        seeds = torch.randint(0, 2**31 - 1, (total,), generator=generator).numpy()
        noise = torch.randn(total, horizon, self.act_dim, generator=generator)
        task_of = np.repeat(np.arange(n_tasks), n_rollouts)  # episode -> task
        obs_dim = self.obs_dim + (tasks.shape[1] if with_task else 0)
        observations = torch.zeros(total, horizon, obs_dim)
        actions = torch.zeros(total, horizon, self.act_dim)
        rewards = torch.zeros(total, horizon)
        mask = torch.zeros(total, horizon)
        std = torch.exp(params["log_std"])  # (act_dim,) or (T, act_dim)
        for start in range(0, total, self.n_envs):
            stop = min(start + self.n_envs, total)
            rows, n = slice(start, stop), stop - start
            slots = np.resize(np.arange(start, stop), self.n_envs)  # spare slots rerun episodes, results dropped
            self.vec.set_attr("assignment", [(tasks[task_of[s]], seeds[s]) for s in np.split(slots, self.vec.num_envs)])
            out, _ = self.vec.reset()
            alive = torch.ones(n)
            # episodes are grouped by task: (task, first row, last row + 1) within this round
            here = task_of[rows]
            groups = [(int(task), int(np.argmax(here == task)), int(n - np.argmax(here[::-1] == task)))
                      for task in np.unique(here)]  # fmt: skip
            task_obs = torch.as_tensor(tasks[task_of[rows]], dtype=torch.float32) if with_task else None
            scale = std[torch.as_tensor(task_of[rows])] if per_task else std
            full = np.zeros((self.n_envs, self.act_dim), np.float32)
            for t in range(horizon):
                obs = torch.as_tensor(out["obs"].reshape(self.n_envs, -1)[:n])
                if task_obs is not None:
                    obs = torch.cat([obs, task_obs], dim=-1)
                with torch.no_grad():
                    if per_task:  # one forward pass per task, on its contiguous rows
                        mean = torch.empty(n, self.act_dim)
                        for task, a, b in groups:
                            mean[a:b] = policy.mean({k: v[task] for k, v in params.items()}, obs[a:b])
                    else:
                        mean = policy.mean(params, obs)
                    action = mean + scale * noise[rows, t]
                observations[rows, t], actions[rows, t], mask[rows, t] = obs, action, alive
                full[:n] = action.numpy()
                out, *_ = self.vec.step(full.reshape(-1, self.per_worker, self.act_dim))
                rewards[rows, t] = torch.as_tensor(out["reward"].reshape(-1)[:n], dtype=torch.float32)
                alive = alive * (1.0 - torch.as_tensor(out["done"].reshape(-1)[:n], dtype=torch.float32))
                if not alive.any():
                    break
        shape = (n_tasks, n_rollouts)
        return Rollouts(
            observations.reshape(*shape, horizon, obs_dim),
            actions.reshape(*shape, horizon, self.act_dim),
            (rewards * mask).reshape(*shape, horizon),
            mask.reshape(*shape, horizon),
        )
