"""Wall-clock time of each stage's last run, as the parallel runner measured it (``make repro JOBS=N``).

The file is ``<reports_dir>/stage_times.json``, committed beside the results it times and a dependency
of ``make_report`` (the report's status table prints it). Times are facts about a machine, not results:
they are kept out of every output a stage computes, so the same params and seed still give the same
bytes. Only the runner (:mod:`reml.fanout`) writes the file, for the stages it saw DVC run (a stage
restored from the run-cache keeps its earlier time); a stage run by plain ``dvc repro`` keeps the time
of its last runner run until the runner next starts and finds dvc.lock naming other outputs for it, when
the entry is dropped (a stopped run's entries, which dvc.lock does not name yet, stay). The
stages that read the file (``make_report``) are never timed: their own time would change their input.
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

FILE_NAME = "stage_times.json"
ABOUT = ("Wall-clock seconds of each stage's last run by `python -m reml repro` (make repro JOBS=N), DVC's checkout "
         "of its inputs included; written by the runner, never by a stage (reml/core/stagetimes.py).")  # fmt: skip
FIELDS = {"seconds": float, "jobs": int, "machine": str, "finished": str, "outs": dict}


def path_for(reports_dir: str | Path) -> Path:
    return Path(reports_dir) / FILE_NAME


def render(stages: dict[str, dict[str, Any]]) -> str:
    """The file's text: stable (sorted) so that an unchanged record is the same bytes."""
    return json.dumps({"about": ABOUT, "stages": dict(sorted(stages.items()))}, indent=1, sort_keys=True) + "\n"


def load(path: str | Path) -> dict[str, dict[str, Any]]:
    """The entries of ``path`` by stage name ({} when it is absent); ArtifactError naming the file and
    the entry when it is malformed."""
    from reml.core.io import ArtifactError  # here: the runner imports this module and not torch

    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: not JSON ({err}); delete it and rerun `make repro JOBS=N`") from None
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        raise ArtifactError(f"{path}: expected an object with a 'stages' mapping")
    for name, entry in stages.items():
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            raise ArtifactError(f"{path}: stages.{name}: expected the fields {sorted(FIELDS)}")
        for key, kind in FIELDS.items():
            value = entry[key]
            ok = isinstance(value, kind) and not isinstance(value, bool) or kind is float and isinstance(value, int)
            if not ok or kind is float and not (math.isfinite(value) and value >= 0):
                raise ArtifactError(f"{path}: stages.{name}.{key}: expected a {kind.__name__} (seconds: finite, >= 0)")
    return stages


def machine() -> str:
    """This machine in a few words: the CPU model and its core count (what a stage's time depends on)."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model or platform.processor() or platform.machine()}, {cores} cores"


def ran(log: str, stage: str) -> bool:
    """Whether a ``dvc repro`` log shows DVC running ``stage`` (not restoring it, not skipping it)."""
    return f"Running stage '{stage}'" in log
