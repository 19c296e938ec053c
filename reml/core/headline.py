"""Headline metrics: the numbers ``dvc metrics show`` prints, one small file per setting.

Each family's evaluation stage writes its full scores (``<reports_dir>/scores/<family>.json``: every
recorded step of every method with its 95% CI, what the report, the figures and ``make verify`` read)
and, from the same numbers, a directory ``<reports_dir>/metrics/<family>/`` with one JSON file per
setting (a K, an N-way K-shot, an RL family): ``{"steps": S, "<method>": score after S steps, ...}``.
DVC prints one row per file and one column per method, so ``dvc metrics show`` is a table a person
can read and ``dvc metrics diff`` names the method and setting that moved. A diverged cell (no finite
mean: fine-tuning blew up on some task) is the string ``"diverged"``, which both commands print as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reml.core.io import atomic_dir, write_json

DIVERGED = "diverged"
Leaves = Mapping[str, float | None]  # e.g. {"mse_step0": ..., "ci95_step0": ..., "mse_step10": ...}


def headline(
    scores: Mapping[str, Mapping[str, Leaves]], value: str, steps: int
) -> dict[str, dict[str, float | int | str]]:
    """``scores[setting][method]`` (a method's leaves) -> the content of each setting's file: the
    ``<value>_step<steps>`` leaf of every method, in the scores' order."""
    return {
        setting: {"steps": steps, **{m: _cell(leaves.get(f"{value}_step{steps}")) for m, leaves in by_method.items()}}
        for setting, by_method in scores.items()
    }


def _cell(value: float | None) -> float | str:
    return value if isinstance(value, int | float) and math.isfinite(value) else DIVERGED


def write_headline(directory: str | Path, files: Mapping[str, Mapping[str, Any]]) -> None:
    """One ``<setting>.json`` per entry of ``files``, the directory replaced as a whole (atomically)."""
    with atomic_dir(directory) as tmp:
        for setting, content in files.items():
            write_json(tmp / f"{setting}.json", dict(content))
