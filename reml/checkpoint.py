"""A method's checkpoint: the initial parameters it hands the harness, and how to adapt them.

Stored as safetensors (no pickle; ``torch.load`` is never needed) with the resolved config as JSON
metadata, so that provenance travels with the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from reml.io import ArtifactError, atomic_path, pack_metadata, require_file, unpack_metadata
from reml.nets import MLP, InputKind, Params
from reml.tasks import TaskSet

_INPUT_KINDS = ("x", "x+task_params")


@dataclass(frozen=True)
class Checkpoint:
    """What the evaluation harness needs from a method.

    ``params`` initialise an ``MLP(sizes)``; it reads ``inputs`` (see :func:`reml.nets.make_inputs`)
    and is fine-tuned at test on K support points with step size ``step_sizes[K]``.
    """

    method: str
    sizes: tuple[int, ...]
    inputs: InputKind
    step_sizes: dict[int, float]  # K -> test-time step size
    params: Params
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

    def initial_params(self, tasks: TaskSet) -> tuple[Params, bool]:
        """The same initial parameters for every task (see :class:`reml.results.Method`)."""
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
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in ckpt.params.items()}, tmp, metadata=pack_metadata(meta))


def load_checkpoint(path: str | Path, made_by: str) -> Checkpoint:
    """Read and check a checkpoint; errors name the file and the stage that writes it."""
    path = require_file(path, made_by)
    try:
        params = load_file(path)
        with safe_open(path, "pt") as f:
            meta = unpack_metadata(f.metadata())
        ckpt = Checkpoint(
            method=meta["method"],
            sizes=tuple(meta["sizes"]),
            inputs=meta["inputs"],
            step_sizes={int(k): float(lr) for k, lr in meta["step_sizes"].items()},
            params=params,
            config=meta["config"],
            info=meta["info"],
        )
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as err:
        raise ArtifactError(f"{path}: not a valid checkpoint ({err!r}); rerun `dvc repro {made_by}`") from None
    if ckpt.inputs not in _INPUT_KINDS:
        raise ArtifactError(f"{path}: inputs {ckpt.inputs!r} not in {_INPUT_KINDS}; rerun `dvc repro {made_by}`")
    if not all(lr > 0 and math.isfinite(lr) for lr in ckpt.step_sizes.values()):
        raise ArtifactError(f"{path}: step sizes {ckpt.step_sizes} are not all positive and finite")
    try:
        ckpt.model.check_params(ckpt.params)
    except ValueError as err:
        raise ArtifactError(f"{path}: {err}; rerun `dvc repro {made_by}`") from None
    return ckpt
