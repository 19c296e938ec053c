"""REML for few-shot classification: a pool of conv blocks and heads, composed per episode by a PPO agent.

The composition MDP is :class:`reml.compose_env.CompositionEnv`'s (same slots, masks, remapping of
invalid choices, terminal reward ``1 / (1 + query loss / scale)``, write-back), with the classification
parts swapped in:

- the pool (:class:`BlockPool`): ``n_input`` first blocks (image channels -> filters), ``n_hidden``
  blocks (filters -> filters) and ``n_output`` linear heads (filters -> N); a network is a first block,
  ``depth`` distinct hidden blocks and a head, i.e. exactly a :class:`reml.convnet.ConvNet`;
- the loss: cross-entropy; inner training: SGD on the support images;
- the task encoding: the mean support image of each episode label, average-pooled to 7x7 (support
  images only; classification tasks have no "oracle" parameters, so there is no oracle encoding);
- network features: ``log(1 + loss)`` and the accuracy, on the support images, of the best immediate
  completion (the blocks so far, global average pooling, the pool's head that fits best).

Only the terminal reward is offered here (the dense, potential-shaped one is regression-only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from reml.compose_env import CompositionEnv
from reml.convnet import ConvNet, batch_norm, cross_entropy
from reml.io import ArtifactError, atomic_path, pack_metadata, require_file, unpack_metadata
from reml.nets import Params

Kind = Literal["input", "hidden", "output"]
KINDS: tuple[Kind, ...] = ("input", "hidden", "output")
ENCODE_SIZE = 7  # support images are average-pooled to 7x7 for the task encoding


@dataclass(frozen=True)
class BlockPool:
    """Stacked parameters per kind: ``blocks[kind][name]`` is (n_kind, ...) for the kind's parameter
    ``name`` (``conv.weight`` ... for blocks, ``weight``/``bias`` for heads); counts as in ``LayerPool``."""

    blocks: dict[str, dict[str, Tensor]]
    net: ConvNet  # the network a full composition makes (its n_blocks = 1 + depth)
    chosen: Tensor
    trained: Tensor

    @staticmethod
    def create(net: ConvNet, n_input: int, n_hidden: int, n_output: int, generator: torch.Generator) -> BlockPool:
        def stack(make, n: int) -> dict[str, Tensor]:
            drawn = [make() for _ in range(n)]
            return {k: torch.stack([d[k] for d in drawn]) for k in drawn[0]}

        blocks = {
            "input": stack(lambda: net.block_init(0, generator), n_input),
            "hidden": stack(lambda: net.block_init(1, generator), n_hidden),
            "output": stack(lambda: net.head_init(generator), n_output),
        }
        size = n_input + n_hidden + n_output
        return BlockPool(blocks, net, torch.zeros(size, dtype=torch.int64), torch.zeros(size, dtype=torch.int64))

    def count(self, kind: Kind) -> int:
        return next(iter(self.blocks[kind].values())).shape[0]

    @property
    def n_hidden(self) -> int:
        return self.count("hidden")

    @property
    def size(self) -> int:
        return sum(self.count(k) for k in KINDS)

    def indices(self, kind: Kind) -> range:
        start = sum(self.count(k) for k in KINDS[: KINDS.index(kind)])
        return range(start, start + self.count(kind))

    def _local(self, index: int) -> tuple[Kind, int]:
        for kind in KINDS:
            if index in self.indices(kind):
                return kind, index - self.indices(kind).start
        raise IndexError(f"block {index} is outside the pool of {self.size}")

    def part(self, index: int) -> dict[str, Tensor]:
        kind, i = self._local(index)
        return {name: t[i] for name, t in self.blocks[kind].items()}

    def network(self, indices: Sequence[int]) -> tuple[ConvNet, Params]:
        """The ConvNet made of a first block, distinct hidden blocks and a head (copies of the pool's)."""
        kinds = [self._local(i)[0] for i in indices]
        expected = ["input", *["hidden"] * (self.net.n_blocks - 1), "output"]
        if kinds != expected or len(set(indices[1:-1])) != len(indices) - 2:
            raise ValueError(f"blocks {list(indices)} have kinds {kinds}; a network is {expected}, hidden distinct")
        params: Params = {}
        for slot, index in enumerate(indices):
            params.update({f"{slot}.{k}": v.clone() for k, v in self.part(index).items()})
        return self.net, params

    def write_back(self, indices: Sequence[int], trained: Params, blend: float) -> BlockPool:
        blocks = {kind: {k: v.clone() for k, v in parts.items()} for kind, parts in self.blocks.items()}
        for slot, index in enumerate(indices):
            kind, i = self._local(index)
            for name, t in blocks[kind].items():
                t[i] = (1 - blend) * t[i] + blend * trained[f"{slot}.{name}"].detach()
        used = torch.zeros(self.size, dtype=torch.int64)
        used[list(indices)] = 1
        return replace(self, blocks=blocks, trained=self.trained + used)

    def count_chosen(self, indices: Sequence[int]) -> BlockPool:
        used = torch.zeros(self.size, dtype=torch.int64)
        used[list(indices)] = 1
        return replace(self, chosen=self.chosen + used)


def save_block_pool(path: str | Path, pool: BlockPool) -> None:
    tensors = {f"{kind}/{k}": v.contiguous() for kind, parts in pool.blocks.items() for k, v in parts.items()}
    tensors |= {"chosen": pool.chosen, "trained": pool.trained}
    net = pool.net
    meta = {"net": [net.in_channels, net.filters, net.n_out, net.image_size, net.n_blocks]}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=pack_metadata(meta))


def load_block_pool(path: str | Path, made_by: str) -> BlockPool:
    path = require_file(path, made_by)
    try:
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            meta = unpack_metadata(f.metadata())
        blocks: dict[str, dict[str, Tensor]] = {kind: {} for kind in KINDS}
        for key, value in tensors.items():
            if "/" in key:
                kind, name = key.split("/", 1)
                blocks[kind][name] = value
        pool = BlockPool(blocks, ConvNet(*meta["net"]), tensors["chosen"], tensors["trained"])
        pool.network([*pool.indices("input")[:1], *pool.indices("hidden")[: pool.net.n_blocks - 1],
                      *pool.indices("output")[:1]])  # fmt: skip
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, StopIteration) as err:
        raise ArtifactError(f"{path}: not a valid block pool ({err!r}); rerun `dvc repro {made_by}`") from None
    return pool


class ConvCompositionEnv(CompositionEnv):
    """Compose a ConvNet for N-way episodes drawn from ``distribution`` (a ``EpisodeDistribution``)."""

    loss = staticmethod(cross_entropy)

    def __init__(
        self,
        pool: BlockPool,
        distribution,
        shots: Sequence[int],
        n_query: int,
        inner_lr: float,
        inner_steps: int,
        reward_scale: float,
        write_back: bool,
        blend: float,
    ) -> None:
        self.n_way = distribution.n_way
        super().__init__(
            pool,  # type: ignore[arg-type]
            distribution,
            depth=pool.net.n_blocks - 1,
            k_support=tuple(shots),
            k_query=n_query,
            inner_optimizer="sgd",
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            encoding="support",
            reward="terminal",
            reward_scale=reward_scale,
            write_back=write_back,
            blend=blend,
            k_encode=self.n_way * max(shots),  # support images of an episode, N·K
        )

    def _task_dim(self) -> int:
        return self.n_way * ENCODE_SIZE**2 + 1  # mean image per label, and K / max K

    def _training_task(self, k: int, rng: torch.Generator) -> dict[str, Tensor]:
        batch = self.distribution.sample(1, k, self.k_query, rng)
        return {"support_x": batch.support_x[0], "support_y": batch.support_y[0],
                "query_x": batch.query_x[0], "query_y": batch.query_y[0]}  # fmt: skip

    def _features(self, x: Tensor) -> Tensor:
        """Globally average-pooled output of the blocks chosen so far (the images' channel means before any)."""
        h = x
        for index in self._chosen[: self.n_slots - 1]:
            p = self.pool.part(index)
            h = F.conv2d(h, p["conv.weight"], p["conv.bias"], padding=1)
            h = F.max_pool2d(torch.relu(batch_norm(h, p["bn.weight"], p["bn.bias"])), 2)
        return h.mean(dim=(2, 3))

    def _network_features(self) -> Tensor:
        x, y = self._task["support_x"], self._task["support_y"]
        with torch.no_grad():
            if len(self._chosen) == self.n_slots:
                model, params = self.pool.network(self._chosen)
                logits = model(params, x)[None]
            else:
                heads = self.pool.blocks["output"]
                features = self._features(x)
                if features.shape[1] != heads["weight"].shape[2]:  # before the first block: no head fits
                    return torch.zeros(2)
                logits = torch.einsum("bf,onf->obn", features, heads["weight"]) + heads["bias"][:, None, :]
            losses = torch.stack([cross_entropy(lg, y) for lg in logits])
            best = int(losses.argmin())
            accuracy = (logits[best].argmax(dim=-1) == y).float().mean()
        return torch.stack([losses[best].clamp(max=1e6).log1p(), accuracy])

    def _observation(self) -> np.ndarray:
        x, y = self._task["support_x"], self._task["support_y"]
        small = F.adaptive_avg_pool2d(x.mean(dim=1, keepdim=True), ENCODE_SIZE).flatten(1)  # (N·K, 49)
        means = (
            torch.zeros(self.n_way, ENCODE_SIZE**2).index_add_(0, y, small)
            / torch.bincount(y, minlength=self.n_way).clamp(min=1)[:, None]
        )
        k = torch.tensor([x.shape[0] / (self.n_way * max(self.k_choices))])
        chosen = torch.zeros(self.pool.size)
        chosen[self._chosen] = 1.0
        slot = torch.zeros(self.n_slots)
        slot[min(len(self._chosen), self.n_slots - 1)] = 1.0
        parts = [means.flatten(), k, chosen, slot, self._network_features()]
        return torch.cat(parts).numpy().astype(np.float32)
