"""Atomic file output and clear errors for missing inputs.

DVC caches whatever sits at an output path when a stage exits successfully; writing to a temporary
file and renaming it means a crash never leaves a half-written file there.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
