"""The task interface of the supervised families: tasks with support and query data.

A :class:`TaskSet` is n tasks, each with K support examples (what a method may adapt on) and Q query
examples (used only to score it): sinusoid regression tasks, or N-way classification episodes. A
:class:`TaskDistribution` samples fresh ones from a generator, for training; a meta-test set is
sampled once, saved, and scored by every method, so that all methods see identical tasks. (Meta-RL
tasks have no data of their own, only an environment to act in: see ``reml.families.rl.tasks``.)

Tasks are always drawn on the CPU, from a CPU generator, so they are the same numbers on every device;
a family moves a task set to the device it runs on with :meth:`TaskSet.to`, once, where it enters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from reml.core.io import ArtifactError, load_tensors, save_tensors


@dataclass(frozen=True)
class TaskSet:
    """``n`` tasks with their support and query examples.

    Regression: ``support_x`` (n, K_max, d_in), ``support_y`` (n, K_max, d_out), ``query_x`` (n, Q, d_in),
    ``query_y`` (n, Q, d_out). Classification episodes: ``support_x`` (n, N·K, C, H, W), ``support_y``
    (n, N·K) integer labels, likewise for the query. ``task_params`` (n, P): the true parameters of each
    task (read only by oracles, and for plotting; P = 0 where tasks have none).
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    task_params: Tensor
    param_names: tuple[str, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.support_x.shape[0]
        for name in ("support_y", "query_x", "query_y", "task_params"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"TaskSet.{name} has {getattr(self, name).shape[0]} tasks, support_x has {n}")
        if self.task_params.shape[1] != len(self.param_names):
            raise ValueError(f"task_params has {self.task_params.shape[1]} columns for names {self.param_names}")

    @staticmethod
    def from_function(
        evaluate: Callable[[Tensor, Tensor], Tensor],
        task_params: Tensor,
        support_x: Tensor,
        query_x: Tensor,
        param_names: tuple[str, ...],
        family: str,
    ) -> TaskSet:
        """Tasks whose targets are ``evaluate(task_params, x)`` at the given support and query inputs."""
        return TaskSet(
            support_x=support_x,
            support_y=evaluate(task_params, support_x),
            query_x=query_x,
            query_y=evaluate(task_params, query_x),
            task_params=task_params,
            param_names=param_names,
            metadata={"family": family},
        )

    def __len__(self) -> int:
        return self.support_x.shape[0]

    @property
    def k_max(self) -> int:
        return self.support_x.shape[1]

    def with_shots(self, k: int) -> TaskSet:
        """The same tasks with only their first ``k`` support points (the K-shot view)."""
        if not 1 <= k <= self.k_max:
            raise ValueError(f"K = {k} is outside [1, {self.k_max}] (the task set stores {self.k_max} support points)")
        return TaskSet(
            self.support_x[:, :k],
            self.support_y[:, :k],
            self.query_x,
            self.query_y,
            self.task_params,
            self.param_names,
            self.metadata,
        )

    def to(self, target: torch.dtype | torch.device | str) -> TaskSet:
        """The same tasks with every tensor cast to a dtype, or moved to a device (``Tensor.to``; moving
        to the device the tensors are on returns them as they are)."""
        cast = {n: getattr(self, n).to(target) for n in _TENSORS}
        return TaskSet(**cast, param_names=self.param_names, metadata=self.metadata)

    def subset(self, index: slice | Tensor) -> TaskSet:
        """A subset of the tasks."""
        return TaskSet(
            self.support_x[index],
            self.support_y[index],
            self.query_x[index],
            self.query_y[index],
            self.task_params[index],
            self.param_names,
            self.metadata,
        )


class TaskDistribution(Protocol):
    """What every task family provides."""

    param_names: tuple[str, ...]

    def sample(self, n_tasks: int, n_support: int, n_query: int, generator: torch.Generator) -> TaskSet:
        """Sample ``n_tasks`` tasks with fresh support and query points."""
        ...


_TENSORS = ("support_x", "support_y", "query_x", "query_y", "task_params")


def save_taskset(path: str | Path, tasks: TaskSet) -> None:
    """Write a task set as safetensors (no pickle, byte-identical for identical tasks)."""
    meta = {"param_names": list(tasks.param_names), "info": tasks.metadata}
    save_tensors(path, {name: getattr(tasks, name) for name in _TENSORS}, meta)


def load_taskset(path: str | Path, made_by: str = "generate_tasks") -> TaskSet:
    """Read a task set written by :func:`save_taskset`, with an error that names the file if it is bad."""
    tensors, meta = load_tensors(path, "task set", made_by)
    missing = [n for n in _TENSORS if n not in tensors]
    if missing or "param_names" not in meta:
        raise ArtifactError(
            f"{path}: malformed task set, missing {missing or ['param_names']}; rerun `dvc repro {made_by}`"
        )
    names = tuple(meta["param_names"])
    return TaskSet(**{n: tensors[n] for n in _TENSORS}, param_names=names, metadata=dict(meta.get("info", {})))


def uniform(
    shape: tuple[int, ...], low: float, high: float, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Draws from U[low, high] of the given shape."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=dtype)
