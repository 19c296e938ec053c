"""Atomic file output, safetensors with metadata, and clear errors for missing or malformed inputs.

DVC caches whatever sits at an output path when a stage exits successfully; writing to a temporary
file and renaming it means a crash never leaves a half-written file there. Every artifact with
tensors is a safetensors file (no pickle) whose metadata is one sorted JSON map, so identical
contents give identical bytes. Tensors on any device can be saved (they are copied to the CPU
first, so the bytes do not depend on where they were computed) and loaded onto any device.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor


class ArtifactError(FileNotFoundError):
    """An input artifact is missing or malformed; the message names the file and how to make it."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


# safetensors writes its metadata map in hash order, so a file with several metadata keys is not
# byte-identical from one save to the next (and DVC would see a changed hash). Keep everything under
# one key, as sorted JSON.
_METADATA_KEY = "reml"


def pack_metadata(meta: dict[str, Any]) -> dict[str, str]:
    return {_METADATA_KEY: json.dumps(meta, sort_keys=True)}


def unpack_metadata(metadata: dict[str, str] | None) -> dict[str, Any]:
    """Inverse of :func:`pack_metadata`; raises ``KeyError`` if the file was not written by it."""
    return json.loads((metadata or {})[_METADATA_KEY])


def require_file(path: str | Path, made_by: str) -> Path:
    """Return ``path`` if it is a file, else raise an error saying which stage makes it."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: not found; it is written by `{made_by}` (run `dvc repro {made_by}`)")
    return path


# What reading a malformed artifact raises: a broken file, a missing tensor or metadata key, a value
# of the wrong type or shape, or weights that do not fit the module they are loaded into.
MALFORMED = (SafetensorError, OSError, KeyError, ValueError, TypeError, RuntimeError, StopIteration)


@contextlib.contextmanager
def reading(path: str | Path, what: str, made_by: str) -> Iterator[None]:
    """Turn any :data:`MALFORMED` error inside the block into an :class:`ArtifactError` that names the
    file, what it should have been and the stage that writes it."""
    try:
        yield
    except ArtifactError:
        raise
    except MALFORMED as err:
        raise ArtifactError(f"{path}: not a valid {what} ({err!r}); rerun `dvc repro {made_by}`") from None


def non_finite(tensors: dict[str, Tensor]) -> list[str]:
    """Names of the floating-point tensors with an inf or NaN entry."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())]


def save_tensors(path: str | Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` and ``meta`` (JSON) as one safetensors file, atomically. Non-finite weights
    (a diverged training run) are refused, so DVC never caches them as a result. Tensors on a GPU are
    copied to the CPU first (one copy per tensor; CPU tensors are written as they are)."""
    tensors = {k: v.detach().cpu() for k, v in tensors.items()}
    bad = non_finite(tensors)
    if bad:
        raise ArtifactError(
            f"{path}: not written, {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} hold inf or NaN "
            "(training diverged: lower its learning rate or step size in params.yaml)"
        )
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=pack_metadata(meta))


def load_tensors(
    path: str | Path, what: str, made_by: str, *, device: torch.device | str = "cpu"
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_tensors`: (tensors on ``device``, metadata); errors name the file."""
    path = require_file(path, made_by)
    with reading(path, what, made_by):
        tensors = load_file(path, device=str(device))  # safetensors takes a device name, not a torch.device
        with safe_open(path, "pt") as f:
            meta = unpack_metadata(f.metadata())
    bad = non_finite(tensors)
    if bad:
        raise ArtifactError(f"{path}: not a valid {what} ({', '.join(bad[:3])} hold inf or NaN); "
                            f"rerun `dvc repro {made_by}`")  # fmt: skip
    return tensors, meta


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path`` (``.<name>.partial``); it replaces ``path`` only
    if the block succeeds, so a failed run never leaves a directory DVC could cache as valid."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_step_sizes(path: str | Path, step_sizes: dict[int, float]) -> None:
    """Every test-time step size an artifact carries is finite and > 0."""
    if not all(lr > 0 and math.isfinite(lr) for lr in step_sizes.values()):
        raise ArtifactError(f"{path}: step sizes {step_sizes} are not all positive and finite")
