"""Few-shot classification tasks: class pools, N-way K-shot episodes (Finn et al. 2017, Sec. 5.2), and how
every method is scored on them (the shared harness with the cross-entropy loss and query accuracy).

A :class:`ClassPool` holds ``(n_classes, n_instances, 1 or 3, H, W)`` float images in [0, 1] and a name
per class. An episode draws N distinct classes, then K support and Q query instances of each, without
overlap, and relabels the N classes by a random permutation (so a label never identifies a class
across episodes). Episodes are stacked into a :class:`~reml.core.tasks.TaskSet`, the task interface
every supervised method and the harness take.

Episodes are drawn with CPU generators. From a pool on the CPU (as ``data.load_split`` gives it) they
are CPU task sets, which the evaluation and meta-training move to their device; scoring runs on the
device of the parameters and episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from reml.core.curve import Curve
from reml.core.harness import Adaptation, accuracy, score, tune_step_size
from reml.core.nets import Weights
from reml.core.seeding import generator
from reml.core.tasks import TaskSet
from reml.families.classification.config import ClassificationConfig, setting_name
from reml.families.classification.nets import ConvNet, MlpNet, cross_entropy


@dataclass(frozen=True)
class ClassPool:
    """Images of every class of one split; ``images[c, i]`` is instance ``i`` of class ``c``."""

    images: Tensor  # (n_classes, n_instances, channels, H, W), float32 in [0, 1]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 5 or self.images.shape[0] != len(self.names):
            raise ValueError(f"images {tuple(self.images.shape)} do not match {len(self.names)} class names")

    @property
    def n_classes(self) -> int:
        return self.images.shape[0]

    @property
    def n_instances(self) -> int:
        return self.images.shape[1]

    def with_rotations(self) -> ClassPool:
        """Finn et al.'s augmentation: each class rotated by 90, 180 and 270 degrees is a new class."""
        rotated = [torch.rot90(self.images, r, dims=(3, 4)) for r in range(4)]
        names = tuple(f"{n}/rot{90 * r}" for r in range(4) for n in self.names)
        return ClassPool(torch.cat(rotated), names)


@dataclass(frozen=True)
class Episode:
    """One N-way task: ``support_x`` (N·K, C, H, W), ``support_y`` (N·K,), ``query_x`` (N·Q, C, H, W),
    ``query_y`` (N·Q,); ``classes`` (N,) the pool's class of each episode label."""

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    classes: Tensor


def sample_episode(pool: ClassPool, n_way: int, k_shot: int, n_query: int, generator: torch.Generator) -> Episode:
    """N distinct classes, K support + Q query instances of each (disjoint), labels permuted."""
    if n_way > pool.n_classes:
        raise ValueError(f"{n_way}-way episodes need {n_way} classes; the pool has {pool.n_classes}")
    if k_shot + n_query > pool.n_instances:
        raise ValueError(f"K + Q = {k_shot + n_query} instances per class; the pool has {pool.n_instances}")
    classes = torch.randperm(pool.n_classes, generator=generator)[:n_way]  # a random order = permuted labels
    support, query = [], []
    for c in classes:
        order = torch.randperm(pool.n_instances, generator=generator)
        support.append(pool.images[c, order[:k_shot]])
        query.append(pool.images[c, order[k_shot : k_shot + n_query]])
    labels = torch.arange(n_way, device=pool.images.device)
    return Episode(
        support_x=torch.cat(support),
        support_y=labels.repeat_interleave(k_shot),
        query_x=torch.cat(query),
        query_y=labels.repeat_interleave(n_query),
        classes=classes,
    )


@dataclass(frozen=True)
class EpisodeDistribution:
    """N-way episodes from one split, a :class:`~reml.core.tasks.TaskDistribution` like the sinusoid one
    (K and Q are per class): support (n, N·K, C, H, W) / (n, N·K), query (n, N·Q, C, H, W) / (n, N·Q),
    no task parameters."""

    pool: ClassPool
    n_way: int
    param_names: tuple[str, ...] = ()

    def sample(self, n: int, k_support: int, k_query: int, generator: torch.Generator) -> TaskSet:
        episodes = [sample_episode(self.pool, self.n_way, k_support, k_query, generator) for _ in range(n)]
        return TaskSet(
            support_x=torch.stack([e.support_x for e in episodes]),
            support_y=torch.stack([e.support_y for e in episodes]),
            query_x=torch.stack([e.query_x for e in episodes]),
            query_y=torch.stack([e.query_y for e in episodes]),
            task_params=torch.zeros(n, 0, device=self.pool.images.device),
            param_names=(),
            metadata={"family": "classification"},
        )


def fixed_episodes(pool: ClassPool, cfg: ClassificationConfig, n_way: int, k_shot: int, n: int, split: str) -> TaskSet:
    """The fixed episodes of one split and setting, the same for every method (seeded by
    ``classification.evaluate.seed``; separate streams per split and setting)."""
    rng = generator(cfg.evaluate.seed, f"cls/{split}/{setting_name(n_way, k_shot)}")
    return EpisodeDistribution(pool, n_way).sample(n, k_shot, cfg.n_query, rng)


def score_episodes(
    net: ConvNet | MlpNet, params: Weights, episodes: TaskSet, adaptation: Adaptation, per_task: bool = False
) -> Curve:
    """Query accuracy after each SGD step on the support images (the shared harness, cross-entropy),
    10 episodes per ``vmap`` call."""
    return score(net, params, episodes, adaptation, cross_entropy, accuracy, per_task=per_task, chunk=10)


def tune_episodes(
    net: ConvNet | MlpNet, params: Weights, episodes: TaskSet, steps: int, grid: Sequence[float], per_task: bool = False
) -> tuple[float, dict[float, float]]:
    """The SGD step size from ``grid`` with the best validation accuracy over steps 1..S."""
    return tune_step_size(lambda a: score_episodes(net, params, episodes, a, per_task), "sgd", steps, grid, True)
