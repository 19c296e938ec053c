"""The REML layer pool: input, hidden and output layers shared by every task (see shared/docs/reml.md).

One global index space: ``[0, n_input)`` are input layers (d_in -> width), ``[n_input, n_input +
n_hidden)`` hidden layers (width -> width), the rest output layers (width -> d_out). A network is a
list of indices, one per slot: input, ``depth`` hidden, output, with ReLU between layers, so it is
exactly an :class:`reml.nets.MLP` whose parameters are the chosen layers.

The pool is immutable: :meth:`LayerPool.write_back` returns a new pool, so evaluation can never modify
the pool it scores with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from reml.io import ArtifactError, atomic_path, pack_metadata, require_file, unpack_metadata
from reml.nets import MLP, Params

Kind = Literal["input", "hidden", "output"]


@dataclass(frozen=True)
class LayerPool:
    """Weights ``(n, out, in)`` and biases ``(n, out)`` per kind, plus how often each layer was chosen
    and how often trained (written back), indexed by global layer index."""

    input_w: Tensor
    input_b: Tensor
    hidden_w: Tensor
    hidden_b: Tensor
    output_w: Tensor
    output_b: Tensor
    chosen: Tensor  # (size,) int64
    trained: Tensor  # (size,) int64

    @staticmethod
    def create(
        d_in: int, width: int, d_out: int, n_input: int, n_hidden: int, n_output: int, generator: torch.Generator
    ) -> LayerPool:
        """A fresh pool, every layer initialised like ``nn.Linear`` (U(±1/√fan_in))."""
        for name, n in (("n_input", n_input), ("n_hidden", n_hidden), ("n_output", n_output)):
            if n < 1:
                raise ValueError(f"{name} must be >= 1, got {n}")

        def uniform(shape: tuple[int, ...], fan_in: int) -> Tensor:
            return (torch.rand(shape, generator=generator) * 2 - 1) * fan_in**-0.5

        size = n_input + n_hidden + n_output
        return LayerPool(
            input_w=uniform((n_input, width, d_in), d_in),
            input_b=uniform((n_input, width), d_in),
            hidden_w=uniform((n_hidden, width, width), width),
            hidden_b=uniform((n_hidden, width), width),
            output_w=uniform((n_output, d_out, width), width),
            output_b=uniform((n_output, d_out), width),
            chosen=torch.zeros(size, dtype=torch.int64),
            trained=torch.zeros(size, dtype=torch.int64),
        )

    @property
    def n_input(self) -> int:
        return self.input_w.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.hidden_w.shape[0]

    @property
    def n_output(self) -> int:
        return self.output_w.shape[0]

    @property
    def size(self) -> int:
        return self.n_input + self.n_hidden + self.n_output

    @property
    def width(self) -> int:
        return self.hidden_w.shape[1]

    def indices(self, kind: Kind) -> range:
        """Global indices of the layers of one kind."""
        start = {"input": 0, "hidden": self.n_input, "output": self.n_input + self.n_hidden}[kind]
        count = {"input": self.n_input, "hidden": self.n_hidden, "output": self.n_output}[kind]
        return range(start, start + count)

    def kind(self, index: int) -> Kind:
        for kind in ("input", "hidden", "output"):
            if index in self.indices(kind):
                return kind
        raise IndexError(f"layer {index} is outside the pool of {self.size}")

    def _local(self, index: int) -> tuple[Kind, int]:
        kind = self.kind(index)
        return kind, index - self.indices(kind).start

    def layer(self, index: int) -> tuple[Tensor, Tensor]:
        """(weight (out, in), bias (out,)) of a global layer index."""
        kind, i = self._local(index)
        return getattr(self, f"{kind}_w")[i], getattr(self, f"{kind}_b")[i]

    def check_network(self, indices: list[int]) -> None:
        """Raise ``ValueError`` unless ``indices`` is input, distinct hiddens, output."""
        kinds = [self.kind(i) for i in indices]
        expected = ["input", *["hidden"] * (len(indices) - 2), "output"]
        if len(indices) < 2 or kinds != expected:
            raise ValueError(f"layers {indices} have kinds {kinds}; a network is {expected}")
        hidden = indices[1:-1]
        if len(set(hidden)) != len(hidden):
            raise ValueError(f"layers {indices} repeat a hidden layer")

    def network(self, indices: list[int]) -> tuple[MLP, Params]:
        """The MLP made of the given layers (copies: training it does not touch the pool)."""
        self.check_network(indices)
        d_in, d_out = self.input_w.shape[2], self.output_w.shape[1]
        model = MLP((d_in, *[self.width] * (len(indices) - 1), d_out))
        params: Params = {}
        for slot, index in enumerate(indices):
            weight, bias = self.layer(index)
            params[f"{slot}.weight"], params[f"{slot}.bias"] = weight.clone(), bias.clone()
        return model, params

    def write_back(self, indices: list[int], trained: Params, blend: float) -> LayerPool:
        """A new pool whose chosen layers move to ``(1 − blend)·old + blend·trained``; counts updated.

        ``blend`` = 1 replaces the layers (the thesis), 0 leaves the weights and only counts the use.
        """
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {blend}")
        self.check_network(indices)
        tensors = {name: getattr(self, name).clone() for name in ("input_w", "input_b", "hidden_w", "hidden_b",
                                                                  "output_w", "output_b")}  # fmt: skip
        for slot, index in enumerate(indices):
            kind, i = self._local(index)
            for part, key in (("w", "weight"), ("b", "bias")):
                old = tensors[f"{kind}_{part}"][i]
                tensors[f"{kind}_{part}"][i] = (1 - blend) * old + blend * trained[f"{slot}.{key}"].detach()
        used = torch.zeros(self.size, dtype=torch.int64)
        used[indices] = 1
        return replace(self, **tensors, trained=self.trained + used)

    def count_chosen(self, indices: list[int]) -> LayerPool:
        """A new pool with the choice counts of ``indices`` incremented."""
        used = torch.zeros(self.size, dtype=torch.int64)
        used[indices] = 1
        return replace(self, chosen=self.chosen + used)


_TENSORS = ("input_w", "input_b", "hidden_w", "hidden_b", "output_w", "output_b", "chosen", "trained")


def save_pool(path: str | Path, pool: LayerPool, config: dict | None = None) -> None:
    """Safetensors with the kinds' index ranges and the config as metadata."""
    meta = {
        "kinds": {k: [pool.indices(k).start, pool.indices(k).stop] for k in ("input", "hidden", "output")},
        "config": config or {},
    }
    with atomic_path(path) as tmp:
        save_file({n: getattr(pool, n).contiguous() for n in _TENSORS}, tmp, metadata=pack_metadata(meta))


def load_pool(path: str | Path, made_by: str = "train_reml") -> LayerPool:
    path = require_file(path, made_by)
    try:
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            unpack_metadata(f.metadata())
        pool = LayerPool(**{n: tensors[n] for n in _TENSORS})
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as err:
        raise ArtifactError(f"{path}: not a valid layer pool ({err!r}); rerun `dvc repro {made_by}`") from None
    return pool
