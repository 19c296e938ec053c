"""Meta-RL task families (Finn et al. 2017, Sec. 5.3): a task is a parameter vector, an environment is
told its task with ``set_task`` before ``reset``.

Every family has the same interface, so the sampler, MAML-TRPO, the baselines and the evaluation stage
never look inside a family:

- ``sample_tasks(n, seed, stream)`` -> ``(n, P)`` float64 array of task parameters, drawn from the
  stream ``rl/<family>/<stream>`` (the test set and the training tasks use different streams, so equal
  seeds never put a test task into training; see :mod:`reml.core.seeding`);
- ``make_env()`` -> a gymnasium environment with ``set_task(task)``; its reward is the task's reward;
- ``horizon``: the episode length H (the sampler cuts episodes there);
- ``frame_skip``: for the MuJoCo families, simulator steps per action (the control interval is
  ``frame_skip`` x the model's timestep, 0.01 s in gymnasium's v5 models): ``None`` keeps the
  environment's own (v5: 5, i.e. 0.05 s); rllab, which Finn et al. ran, stepped 0.01 s (HalfCheetah)
  and 0.02 s (Ant). :func:`reml.families.rl.rl_family` sets it from ``rl.families.<name>.frame_skip``;
- ``param_names``: what the P task parameters mean (the oracle appends them to the observation).

The families live in :mod:`reml.families.rl.navigation` and :mod:`reml.families.rl.locomotion`;
:func:`reml.families.rl.rl_family` finds one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import gymnasium as gym
import numpy as np
import torch

from reml.core.seeding import generator
from reml.core.tasks import uniform as draw_uniform


@dataclass(frozen=True)
class RLFamily:
    """One task distribution: how to draw tasks and how to build an environment that runs one."""

    name: str
    param_names: tuple[str, ...]
    horizon: int
    build: Callable[[int | None], gym.Env]  # frame_skip (None: the environment's own) -> an environment
    draw: Callable[[int, torch.Generator], torch.Tensor]  # (n, generator) -> (n, P) task parameters
    simulated: bool = False  # a MuJoCo body, whose control interval ``frame_skip`` sets
    frame_skip: int | None = None  # simulator steps per action; None: the environment's default

    def make_env(self) -> gym.Env:
        return self.build(self.frame_skip)

    def with_frame_skip(self, frame_skip: int | None) -> RLFamily:
        """The same family stepping ``frame_skip`` simulator steps per action (``None``: the default)."""
        if frame_skip is not None and not self.simulated:
            raise ValueError(f"{self.name} is not simulated by MuJoCo: frame_skip must be None, got {frame_skip}")
        positive = isinstance(frame_skip, int) and not isinstance(frame_skip, bool) and frame_skip >= 1
        if frame_skip is not None and not positive:
            raise ValueError(f"frame_skip must be a positive integer or None, got {frame_skip!r}")
        return replace(self, frame_skip=frame_skip)

    def sample_tasks(self, n: int, seed: int, stream: str = "train") -> np.ndarray:
        """``n`` tasks, (n, P) float64, deterministic in (seed, stream)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        tasks = self.draw(n, generator(seed, f"rl/{self.name}/{stream}")).to(torch.float64).numpy()
        assert tasks.shape == (n, len(self.param_names)), tasks.shape
        return tasks


def uniform_task(low: float, high: float, dims: int = 1) -> Callable[[int, torch.Generator], torch.Tensor]:
    """Task parameters ~ U[low, high]^dims."""

    def draw(n: int, rng: torch.Generator) -> torch.Tensor:
        return draw_uniform((n, dims), low, high, rng, dtype=torch.float64)

    return draw


def direction(n: int, rng: torch.Generator) -> torch.Tensor:
    """Task parameter d in {-1, +1}, each with probability 1/2."""
    return torch.randint(0, 2, (n, 1), generator=rng).to(torch.float64) * 2 - 1


def check_task(task: np.ndarray, param_names: tuple[str, ...]) -> np.ndarray:
    task = np.asarray(task, dtype=np.float64)
    if task.shape != (len(param_names),) or not np.isfinite(task).all():
        raise ValueError(f"a task is {len(param_names)} finite numbers {param_names}, got {task!r}")
    return task
