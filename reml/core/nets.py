"""Functional networks for ``torch.func``: parameters live in a plain dict, the model is a pure function.

Keeping parameters outside a module lets the harness (and MAML later) differentiate with
``torch.func.grad`` and batch over tasks with ``torch.func.vmap`` without copying modules.

Initial parameters are always drawn on the CPU, from a CPU generator (:mod:`reml.core.seeding`), so
they are the same numbers on every device; :func:`on_device` then moves them where the network runs.
A network runs on the device of its parameters and inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

Weights = dict[str, Tensor]  # a functional network's parameters by name
InputKind = Literal["x", "x+task_params"]


@dataclass(frozen=True)
class MLP:
    """A ReLU multilayer perceptron with layer sizes ``sizes = (d_in, h_1, ..., d_out)``.

    Parameter names are ``"{i}.weight"`` (out, in) and ``"{i}.bias"`` (out,) for layer ``i``.
    """

    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"MLP sizes must be >= 2 positive widths, got {self.sizes}")

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def init(self, generator: torch.Generator) -> Weights:
        """PyTorch's ``nn.Linear`` default: weight and bias ~ U(±1/√fan_in), drawn from ``generator``
        (on the CPU: see :func:`on_device`)."""
        params: Weights = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            bound = fan_in**-0.5
            params[f"{i}.weight"] = (torch.rand((fan_out, fan_in), generator=generator) * 2 - 1) * bound
            params[f"{i}.bias"] = (torch.rand((fan_out,), generator=generator) * 2 - 1) * bound
        return params

    def __call__(self, params: Weights, x: Tensor) -> Tensor:
        """(..., d_in) -> (..., d_out)."""
        h = x
        for i in range(self.n_layers):
            h = torch.nn.functional.linear(h, params[f"{i}.weight"], params[f"{i}.bias"])
            if i < self.n_layers - 1:
                h = torch.relu(h)
        return h

    def check_params(self, params: Weights) -> None:
        """Raise ``ValueError`` if ``params`` does not have this network's names and shapes."""
        check_fits(self, params)


def on_device(params: Weights, device: torch.device | str) -> Weights:
    """``params`` on ``device``: the same tensors if they are there already (always, on the CPU), else copies."""
    return {k: v.to(device) for k, v in params.items()}


class Network(Protocol):
    """A functional network: draws its own initial parameters and maps (parameters, inputs) to outputs."""

    def init(self, generator: torch.Generator) -> Weights: ...

    def __call__(self, params: Weights, x: Tensor) -> Tensor: ...


def check_fits(network: Network, params: Weights) -> None:
    """Raise ``ValueError`` unless ``params`` has exactly the names and shapes ``network`` initialises."""
    check_shapes(network.init(torch.Generator().manual_seed(0)), params, network)


def check_shapes(expected: Weights, params: Weights, network: object) -> None:
    """Raise ``ValueError`` unless ``params`` has exactly the names and shapes of ``expected``."""
    want = {k: tuple(v.shape) for k, v in expected.items()}
    got = {k: tuple(v.shape) for k, v in params.items()}
    if want != got:
        raise ValueError(f"parameters do not fit {network}: expected {want}, got {got}")


def make_inputs(x: Tensor, task_params: Tensor, kind: InputKind) -> Tensor:
    """Network inputs for points ``x`` (n, m, d) of tasks with parameters ``task_params`` (n, P).

    ``"x"`` is what every method sees; ``"x+task_params"`` appends the true task parameters to every
    point, which only the ``oracle`` baseline is allowed.
    """
    if kind == "x":
        return x
    if kind == "x+task_params":
        expanded = task_params[:, None, :].expand(x.shape[0], x.shape[1], task_params.shape[1])
        return torch.cat([x, expanded], dim=-1)
    raise ValueError(f"unknown input kind {kind!r}; allowed: 'x', 'x+task_params'")


def input_dim(kind: InputKind, x_dim: int, n_task_params: int) -> int:
    return x_dim + (n_task_params if kind == "x+task_params" else 0)
