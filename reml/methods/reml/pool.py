"""The REML layer pool: input, hidden and output layers shared by every task (see shared/docs/reml.md).

One global index space: ``[0, n_input)`` are input layers, ``[n_input, n_input + n_hidden)`` hidden
layers, the rest output layers. A network is a list of indices, one per slot: an input layer, distinct
hidden layers, an output layer. What a layer is depends on the family: a linear layer of an MLP
(sinusoids, RL policies: parts ``weight`` (out, in) and ``bias`` (out,)) or a conv block and a linear
head (classification). The pool stores each kind's parts stacked, ``parts[kind][name]`` of shape
(n_kind, ...), and hands out a network's parameters under the names its functional network expects:
slot ``s`` gets ``"{s}.{name}"``.

The pool is immutable: :meth:`LayerPool.write_back` returns a new pool, so evaluation can never modify
the pool it scores with. All of a pool's tensors live on one device (:attr:`LayerPool.device`): the
environments and agents built on a pool run there. Pools are drawn on the CPU (from CPU generators) and
moved with :meth:`LayerPool.to`; files always hold CPU tensors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from reml.core.io import load_tensors, reading, save_tensors
from reml.core.nets import Weights

Kind = Literal["input", "hidden", "output"]
KINDS: tuple[Kind, ...] = ("input", "hidden", "output")


@dataclass(frozen=True)
class LayerPool:
    """Stacked layer parameters per kind, plus how often each layer was chosen and how often trained
    (written back), indexed by global layer index."""

    parts: dict[Kind, dict[str, Tensor]]  # kind -> part name -> (n_kind, ...)
    chosen: Tensor  # (size,) int64
    trained: Tensor  # (size,) int64

    def count(self, kind: Kind) -> int:
        return next(iter(self.parts[kind].values())).shape[0]

    @property
    def device(self) -> torch.device:
        """Where the pool's tensors are (the use counts are kept beside them)."""
        return self.chosen.device

    def to(self, device: torch.device | str) -> LayerPool:
        """The same pool on ``device`` (sharing its tensors where they are already there)."""
        parts = {kind: {name: t.to(device) for name, t in by_name.items()} for kind, by_name in self.parts.items()}
        return LayerPool(parts, self.chosen.to(device), self.trained.to(device))

    @property
    def n_input(self) -> int:
        return self.count("input")

    @property
    def n_hidden(self) -> int:
        return self.count("hidden")

    @property
    def n_output(self) -> int:
        return self.count("output")

    @property
    def size(self) -> int:
        return sum(self.count(k) for k in KINDS)

    def indices(self, kind: Kind) -> range:
        """Global indices of the layers of one kind."""
        start = sum(self.count(k) for k in KINDS[: KINDS.index(kind)])
        return range(start, start + self.count(kind))

    def kind(self, index: int) -> Kind:
        return self._local(index)[0]

    def _local(self, index: int) -> tuple[Kind, int]:
        for kind in KINDS:
            if index in self.indices(kind):
                return kind, index - self.indices(kind).start
        raise IndexError(f"layer {index} is outside the pool of {self.size}")

    def layer(self, index: int) -> dict[str, Tensor]:
        """The parts of one layer (views into the pool), by global index."""
        kind, i = self._local(index)
        return {name: t[i] for name, t in self.parts[kind].items()}

    def check_network(self, indices: Sequence[int]) -> None:
        """Raise ``ValueError`` unless ``indices`` is input, distinct hiddens, output."""
        kinds = [self.kind(i) for i in indices]
        expected = ["input", *["hidden"] * (len(indices) - 2), "output"]
        if len(indices) < 2 or kinds != expected:
            raise ValueError(f"layers {list(indices)} have kinds {kinds}; a network is {expected}")
        hidden = indices[1:-1]
        if len(set(hidden)) != len(hidden):
            raise ValueError(f"layers {list(indices)} repeat a hidden layer")

    def network(self, indices: Sequence[int]) -> Weights:
        """The parameters of the network made of the given layers (copies: training it does not touch
        the pool), slot ``s``'s parts named ``"{s}.{name}"``."""
        self.check_network(indices)
        params: Weights = {}
        for slot, index in enumerate(indices):
            params.update({f"{slot}.{name}": t.clone() for name, t in self.layer(index).items()})
        return params

    def write_back(self, indices: Sequence[int], trained: Weights, blend: float) -> LayerPool:
        """A new pool whose chosen layers move to ``(1 − blend)·old + blend·trained``; counts updated.

        ``blend`` = 1 replaces the layers (the thesis), 0 leaves the weights and only counts the use.
        ``trained`` holds the network's parameters as :meth:`network` names them (extra keys ignored).
        """
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {blend}")
        self.check_network(indices)
        parts = {kind: {name: t.clone() for name, t in by_name.items()} for kind, by_name in self.parts.items()}
        for slot, index in enumerate(indices):
            kind, i = self._local(index)
            for name, t in parts[kind].items():
                t[i] = (1 - blend) * t[i] + blend * trained[f"{slot}.{name}"].detach()
        return replace(self, parts=parts, trained=self.trained + self._used(indices))

    def count_chosen(self, indices: Sequence[int]) -> LayerPool:
        """A new pool with the choice counts of ``indices`` incremented."""
        return replace(self, chosen=self.chosen + self._used(indices))

    def _used(self, indices: Sequence[int]) -> Tensor:
        used = torch.zeros(self.size, dtype=torch.int64, device=self.device)
        used[list(indices)] = 1
        return used


def stacked_pool(layers: dict[Kind, list[dict[str, Tensor]]]) -> LayerPool:
    """A fresh pool from a list of initialised layers per kind, use counts at 0."""
    parts = {kind: {name: torch.stack([layer[name] for layer in drawn]) for name in drawn[0]}
             for kind, drawn in layers.items()}  # fmt: skip
    size = sum(len(drawn) for drawn in layers.values())
    return LayerPool(parts, torch.zeros(size, dtype=torch.int64), torch.zeros(size, dtype=torch.int64))


def linear_pool(
    d_in: int, width: int, d_out: int, n_input: int, n_hidden: int, n_output: int, generator: torch.Generator
) -> LayerPool:
    """A fresh pool of MLP layers (d_in -> width, width -> width, width -> d_out), every layer
    initialised like ``nn.Linear`` (U(±1/√fan_in)), drawn kind by kind, weights before biases."""
    for name, n in (("n_input", n_input), ("n_hidden", n_hidden), ("n_output", n_output)):
        if n < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")

    def uniform(shape: tuple[int, ...], fan_in: int) -> Tensor:
        return (torch.rand(shape, generator=generator) * 2 - 1) * fan_in**-0.5

    parts: dict[Kind, dict[str, Tensor]] = {}
    for kind, n, fan_in, fan_out in (("input", n_input, d_in, width), ("hidden", n_hidden, width, width),
                                      ("output", n_output, width, d_out)):  # fmt: skip
        weight = uniform((n, fan_out, fan_in), fan_in)
        parts[kind] = {"weight": weight, "bias": uniform((n, fan_out), fan_in)}
    size = n_input + n_hidden + n_output
    return LayerPool(parts, torch.zeros(size, dtype=torch.int64), torch.zeros(size, dtype=torch.int64))


# --------------------------------------------------------------------------- files
# Two tensor naming schemes, both safetensors: MLP layers as ``<kind>_w`` / ``<kind>_b`` (weight, bias),
# other layers as ``<kind>/<part>``; the use counts as ``chosen`` and ``trained``.

_LINEAR = re.compile(r"(input|hidden|output)_(w|b)")
_LINEAR_PARTS = {"w": "weight", "b": "bias"}


def pool_tensors(pool: LayerPool, prefix: str = "") -> dict[str, Tensor]:
    """The pool as named tensors (``prefix`` before every name, for a file that holds more), on the pool's
    device (``save_tensors`` writes CPU copies)."""
    linear = all(set(by_name) == {"weight", "bias"} for by_name in pool.parts.values())
    tensors = {
        (f"{kind}_{name[0]}" if linear else f"{kind}/{name}"): t
        for kind, by_name in pool.parts.items()
        for name, t in by_name.items()
    }
    tensors |= {"chosen": pool.chosen, "trained": pool.trained}
    return {f"{prefix}{k}": v for k, v in tensors.items()}


def pool_from_tensors(tensors: dict[str, Tensor], prefix: str = "") -> LayerPool:
    """Inverse of :func:`pool_tensors`; raises ``KeyError`` or ``ValueError`` on a malformed set."""
    parts: dict[Kind, dict[str, Tensor]] = {kind: {} for kind in KINDS}
    for key, t in tensors.items():
        if not key.startswith(prefix) or key[len(prefix) :] in ("chosen", "trained"):
            continue
        name = key[len(prefix) :]
        linear = _LINEAR.fullmatch(name)
        kind, part = (linear[1], _LINEAR_PARTS[linear[2]]) if linear else name.split("/", 1)
        if kind not in parts:
            raise ValueError(f"pool tensor {key!r} is not of a layer kind {KINDS}")
        parts[kind][part] = t
    pool = LayerPool(parts, tensors[f"{prefix}chosen"], tensors[f"{prefix}trained"])  # type: ignore[arg-type]
    if any(not by_name for by_name in parts.values()) or pool.chosen.shape != (pool.size,):
        raise ValueError(f"a pool needs layers of every kind {KINDS} and one use count per layer")
    return pool


def save_pool(path: str | Path, pool: LayerPool, meta: dict[str, Any]) -> None:
    """Write the pool (from CPU copies of its tensors: the same bytes whatever device it trained on)."""
    save_tensors(path, pool_tensors(pool), meta)


def load_pool(
    path: str | Path, made_by: str, *, device: torch.device | str = "cpu"
) -> tuple[LayerPool, dict[str, Any]]:
    """A pool file and its metadata, the pool on ``device``; errors name the file and the stage that writes it."""
    tensors, meta = load_tensors(path, "layer pool", made_by, device=device)
    with reading(path, "layer pool", made_by):
        return pool_from_tensors(tensors), meta
