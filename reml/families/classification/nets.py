"""Finn et al.'s few-shot classifiers as pure functions of a parameter dict (for ``torch.func``).

``ConvNet``: ``n_blocks`` x [3x3 conv with ``filters`` channels, batch norm, ReLU, 2x2 max-pool], then a
linear head (Finn et al. 2017, Sec. 5.2: 4 blocks of 64 filters on Omniglot, 32 on MiniImageNet).
``MlpNet``: the non-convolutional variant, [linear, batch norm, ReLU] per hidden width (256-128-64-64).

Batch norm is used as in MAML: always the statistics of the batch being processed (no running averages),
with a learned scale and shift per channel. Parameter names: block ``i`` has ``"{i}.conv.weight"`` (or
``"{i}.linear.weight"``), ``"{i}.conv.bias"``, ``"{i}.bn.weight"``, ``"{i}.bn.bias"``; the head, slot
``n_blocks``, has ``"{n}.weight"`` and ``"{n}.bias"`` (the same slot numbering as ``reml.core.nets.MLP``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from reml.core.nets import Weights

BN_EPS = 1e-5


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> Tensor:
    """PyTorch's default for ``nn.Conv2d`` / ``nn.Linear``: U(±1/√fan_in)."""
    return (torch.rand(shape, generator=generator) * 2 - 1) * fan_in**-0.5


def batch_norm(h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Normalise each channel (dim 1) over the batch and spatial dims with the batch's own statistics."""
    dims = [0, *range(2, h.ndim)]
    mean = h.mean(dim=dims, keepdim=True)
    var = h.var(dim=dims, keepdim=True, correction=0)
    shape = (1, -1, *[1] * (h.ndim - 2))
    return (h - mean) / torch.sqrt(var + BN_EPS) * weight.view(shape) + bias.view(shape)


@dataclass(frozen=True)
class ConvNet:
    in_channels: int
    filters: int
    n_out: int
    image_size: int
    n_blocks: int = 4

    def __post_init__(self) -> None:
        if min(self.in_channels, self.filters, self.n_out, self.n_blocks) < 1:
            raise ValueError(f"ConvNet sizes must be positive, got {self}")
        if self.image_size >> self.n_blocks < 1:
            raise ValueError(f"{self.n_blocks} 2x2 poolings need images of at least {2**self.n_blocks} pixels")

    @property
    def n_features(self) -> int:
        return self.filters * (self.image_size >> self.n_blocks) ** 2

    def block_init(self, i: int, generator: torch.Generator) -> Weights:
        """Block ``i``'s parameters, named without the slot prefix (``conv.weight``, ...)."""
        c_in = self.in_channels if i == 0 else self.filters
        fan_in = c_in * 9
        return {
            "conv.weight": _uniform((self.filters, c_in, 3, 3), fan_in, generator),
            "conv.bias": _uniform((self.filters,), fan_in, generator),
            "bn.weight": torch.ones(self.filters),
            "bn.bias": torch.zeros(self.filters),
        }

    def head_init(self, generator: torch.Generator) -> Weights:
        return {
            "weight": _uniform((self.n_out, self.n_features), self.n_features, generator),
            "bias": _uniform((self.n_out,), self.n_features, generator),
        }

    def init(self, generator: torch.Generator) -> Weights:
        params: Weights = {}
        for i in range(self.n_blocks):
            params.update({f"{i}.{k}": v for k, v in self.block_init(i, generator).items()})
        params.update({f"{self.n_blocks}.{k}": v for k, v in self.head_init(generator).items()})
        return params

    def features(self, params: Weights, x: Tensor, blocks: int | None = None) -> Tensor:
        """(B, C, H, W) -> (B, n_features) after the first ``blocks`` blocks (all by default), flattened."""
        h = x
        for i in range(self.n_blocks if blocks is None else blocks):
            h = F.conv2d(h, params[f"{i}.conv.weight"], params[f"{i}.conv.bias"], padding=1)
            h = torch.relu(batch_norm(h, params[f"{i}.bn.weight"], params[f"{i}.bn.bias"]))
            h = F.max_pool2d(h, 2)
        return h.flatten(1)

    def __call__(self, params: Weights, x: Tensor) -> Tensor:
        """Images (B, C, H, W) -> logits (B, n_out)."""
        n = self.n_blocks
        return F.linear(self.features(params, x), params[f"{n}.weight"], params[f"{n}.bias"])


@dataclass(frozen=True)
class MlpNet:
    in_features: int
    hidden: tuple[int, ...]
    n_out: int

    def init(self, generator: torch.Generator) -> Weights:
        params: Weights = {}
        sizes = (self.in_features, *self.hidden)
        for i, (fan_in, width) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            params[f"{i}.linear.weight"] = _uniform((width, fan_in), fan_in, generator)
            params[f"{i}.linear.bias"] = _uniform((width,), fan_in, generator)
            params[f"{i}.bn.weight"], params[f"{i}.bn.bias"] = torch.ones(width), torch.zeros(width)
        n = len(self.hidden)
        params[f"{n}.weight"] = _uniform((self.n_out, sizes[-1]), sizes[-1], generator)
        params[f"{n}.bias"] = _uniform((self.n_out,), sizes[-1], generator)
        return params

    def __call__(self, params: Weights, x: Tensor) -> Tensor:
        """Images (B, C, H, W) (or already flat, (B, in_features)) -> logits (B, n_out)."""
        h = x.flatten(1)
        for i in range(len(self.hidden)):
            h = F.linear(h, params[f"{i}.linear.weight"], params[f"{i}.linear.bias"])
            h = torch.relu(batch_norm(h, params[f"{i}.bn.weight"], params[f"{i}.bn.bias"]))
        n = len(self.hidden)
        return F.linear(h, params[f"{n}.weight"], params[f"{n}.bias"])


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of logits (B, N) against integer labels (B,)."""
    return F.cross_entropy(logits, labels)
