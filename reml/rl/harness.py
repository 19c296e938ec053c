"""The one RL evaluation routine every method goes through (Finn et al. 2017, Sec. 5.3): on each test
task, sample episodes with the current policy, record their mean return, take one REINFORCE step on
exactly those episodes (step size ``step_sizes[s]``), and repeat; returns after steps 0..S."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from reml.harness import ci95
from reml.nets import Params
from reml.rl.pg import TaskBatch, adapt
from reml.rl.policy import GaussianPolicy
from reml.rl.sampler import Sampler


@dataclass(frozen=True)
class ReturnCurve:
    """Mean return over each test task's episodes after every adaptation step 0..S."""

    per_task: Tensor  # (n_tasks, S+1), float64

    @property
    def mean(self) -> Tensor:
        return self.per_task.mean(dim=0)

    @property
    def ci95(self) -> Tensor:
        return ci95(self.per_task)


def adaptation_returns(
    policy: GaussianPolicy,
    params: Params,
    tasks: np.ndarray,
    sampler: Sampler,
    step_sizes: tuple[float, ...],
    rollouts: int,
    gamma: float,
    generator: torch.Generator,
    with_task: bool = False,
    per_task: bool = False,
) -> ReturnCurve:
    """Returns after 0..len(step_sizes) policy-gradient steps on each of the (T, P) ``tasks``.

    ``with_task`` appends the task parameters to the observation (the oracle's policy reads them);
    ``per_task``: ``params`` are stacked per task (leading axis T), e.g. REML's composed policies."""
    current = params
    returns = []
    for s in range(len(step_sizes) + 1):
        episodes = sampler.sample(policy, current, tasks, rollouts, generator, per_task=per_task, with_task=with_task)
        returns.append(episodes.returns.mean(dim=1))
        if s < len(step_sizes):
            current = adapt(policy, current, TaskBatch.of(episodes, gamma), step_sizes[s], per_task=per_task)
            per_task = True
    return ReturnCurve(torch.stack(returns, dim=1).double())
