"""A classification method's checkpoint: the initial parameters for one N (and K, for meta-learners), with
its test-time step sizes; safetensors with the config as metadata, never a pickle. Loaded onto the
device it is scored on; saved from any device (the parameters are copied to the CPU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reml.core.io import ArtifactError, load_tensors, reading, save_tensors
from reml.core.nets import Weights, check_shapes
from reml.families.classification.nets import ConvNet, MlpNet


@dataclass(frozen=True)
class ClassifierCheckpoint:
    """Initial parameters of a classification method for one N (and K for meta-learners), with its
    test-time SGD step size per K (None where the evaluation tunes it)."""

    method: str
    n_way: int
    params: Weights
    step_sizes: dict[int, float]
    config: dict[str, Any]


def save_classifier(path: str | Path, ckpt: ClassifierCheckpoint) -> None:
    meta = {
        "method": ckpt.method,
        "n_way": ckpt.n_way,
        "step_sizes": {str(k): v for k, v in sorted(ckpt.step_sizes.items())},
        "config": ckpt.config,
    }
    save_tensors(path, ckpt.params, meta)


def load_classifier(
    path: str | Path,
    made_by: str,
    model: ConvNet | MlpNet | None = None,
    body_only: bool = False,
    method: str | None = None,
    *,
    device: torch.device | str = "cpu",
) -> ClassifierCheckpoint:
    """Read a checkpoint (of ``method``, if given), its parameters on ``device``; with ``model``, also
    check the parameter names and shapes fit it (with ``body_only``, every parameter but the head's: the
    pretrained classifier has one output per meta-train class and gets a fresh N-way head at test)."""
    params, meta = load_tensors(path, "classifier", made_by, device=device)
    with reading(path, "classifier", made_by):
        ckpt = ClassifierCheckpoint(
            method=meta["method"],
            n_way=int(meta["n_way"]),
            params=params,
            step_sizes={int(k): float(v) for k, v in meta["step_sizes"].items()},
            config=meta["config"],
        )
        if model is not None:
            expected = model.init(torch.Generator().manual_seed(0))
            if body_only:  # the head's slot is the highest
                head = f"{head_slot(expected)}."
                expected, params = ({k: v for k, v in d.items() if not k.startswith(head)} for d in (expected, params))
            check_shapes(expected, params, model)
    if method is not None and ckpt.method != method:
        raise ArtifactError(
            f"{path}: holds the {ckpt.method} classifier, expected {method}'s; rerun `dvc repro {made_by}`"
        )
    return ckpt


def head_slot(params: Weights) -> int:
    """The slot of a classifier's head: the last one (see :mod:`reml.families.classification.nets`)."""
    return max(int(k.split(".")[0]) for k in params)
