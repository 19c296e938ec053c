"""A method's checkpoint: the initial parameters it hands the harness, and how to adapt them.

Stored as safetensors (no pickle; ``torch.load`` is never needed) with the resolved config as JSON
metadata, so that provenance travels with the weights. A checkpoint is loaded onto the device it is
scored on; saving one copies its parameters to the CPU, so the file does not depend on the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reml.core.io import ArtifactError, check_step_sizes, load_tensors, reading, save_tensors
from reml.core.nets import MLP, InputKind, Weights
from reml.core.tasks import TaskSet

_INPUT_KINDS = ("x", "x+task_params")


@dataclass(frozen=True)
class Checkpoint:
    """What the evaluation harness needs from a method.

    ``params`` initialise an ``MLP(sizes)``; it reads ``inputs`` (see :func:`reml.core.nets.make_inputs`)
    and is fine-tuned at test on K support points with step size ``step_sizes[K]``.
    """

    method: str
    sizes: tuple[int, ...]
    inputs: InputKind
    step_sizes: dict[int, float]  # K -> test-time step size
    params: Weights
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config that made it
    info: dict[str, Any] = field(default_factory=dict)  # anything else worth reporting (e.g. tuning)

    @property
    def model(self) -> MLP:
        return MLP(self.sizes)

    def step_size(self, k: int) -> float:
        if k not in self.step_sizes:
            raise ArtifactError(
                f"the {self.method} checkpoint has step sizes for K in {sorted(self.step_sizes)}, not K = {k}; "
                "rerun the stage that trains it (`dvc repro`)"
            )
        return self.step_sizes[k]

    def initial_params(self, tasks: TaskSet) -> tuple[Weights, bool]:
        """The same initial parameters for every task (see :class:`reml.families.sinusoid.evaluate.Method`)."""
        return self.params, False


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    meta = {
        "method": ckpt.method,
        "sizes": list(ckpt.sizes),
        "inputs": ckpt.inputs,
        "step_sizes": {str(k): lr for k, lr in sorted(ckpt.step_sizes.items())},
        "config": ckpt.config,
        "info": ckpt.info,
    }
    save_tensors(path, ckpt.params, meta)


def load_checkpoint(
    path: str | Path, made_by: str, method: str | None = None, *, device: torch.device | str = "cpu"
) -> Checkpoint:
    """Read and check a checkpoint (of ``method``, if given), its parameters on ``device``; errors name the
    file and the stage that writes it."""
    params, meta = load_tensors(path, "checkpoint", made_by, device=device)
    with reading(path, "checkpoint", made_by):
        ckpt = Checkpoint(
            method=meta["method"],
            sizes=tuple(meta["sizes"]),
            inputs=meta["inputs"],
            step_sizes={int(k): float(lr) for k, lr in meta["step_sizes"].items()},
            params=params,
            config=meta["config"],
            info=meta["info"],
        )
        if ckpt.inputs not in _INPUT_KINDS:
            raise ValueError(f"inputs {ckpt.inputs!r} not in {_INPUT_KINDS}")
        ckpt.model.check_params(ckpt.params)
    if method is not None and ckpt.method != method:
        raise ArtifactError(
            f"{path}: holds the {ckpt.method} checkpoint, expected {method}'s; rerun `dvc repro {made_by}`"
        )
    check_step_sizes(path, ckpt.step_sizes)
    return ckpt
