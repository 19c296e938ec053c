"""Plumbing shared by the thin scripts in ``stages/``: arguments, validation, clean errors.

A stage script defines ``run(args, cfg)`` and ends with ``main(run, __doc__, load, "out", ...)``:
``load`` is its family's params loader, the other names its required command-line arguments (the
paths ``dvc.yaml`` passes). ``args.device`` is the ``torch.device`` that params.yaml's ``compute``
section resolves to (:mod:`reml.core.compute`). Everything that can be checked (the family's params, every input
artifact) is checked before any compute; a bad value ends the stage with one line naming the key or
file, not a traceback.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from reml.core import compute
from reml.core.config import ConfigError
from reml.core.io import ArtifactError
from reml.core.seeding import configure_torch

C = TypeVar("C")  # a family's params
T = TypeVar("T")  # what a training stage trained


def parser(description: str | None, *paths: str, **typed: type) -> argparse.ArgumentParser:
    """``--params`` and one required option per name: ``paths`` as strings, ``typed`` converted by their
    type (``list``: one or more strings). ``val_tasks`` becomes ``--val-tasks``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    for name, kind in {**dict.fromkeys(paths, str), **typed}.items():
        flag = f"--{name.replace('_', '-')}"
        if kind is list:
            p.add_argument(flag, nargs="+", required=True)
        else:
            p.add_argument(flag, type=kind, required=True)
    return p


def main(
    run: Callable[[argparse.Namespace, C], None],
    description: str | None,
    load: Callable[[str], C],
    *paths: str,
    argv: Sequence[str] | None = None,
    on_device: bool = True,
    **typed: type,
) -> None:
    """Parse the arguments, load the params with ``load``, then call ``run``; exit 1 with a one-line
    message on bad input. A stage with ``on_device=False`` (task generation, figures) always runs on the
    CPU and does not read ``compute``, so switching devices does not rerun it."""
    args = parser(description, *paths, **typed).parse_args(argv)
    start = time.perf_counter()
    try:
        params = load(args.params)
        if on_device:
            args.device = compute.configure(compute.load(args.params))  # the torch.device the stage runs on
        else:
            configure_torch()
            args.device = torch.device("cpu")
        run(args, params)
    except ConfigError as err:
        sys.exit(f"error in {args.params}: {err}")
    except ArtifactError as err:
        sys.exit(f"error: {err}")
    print(f"{Path(sys.argv[0]).stem}: done in {time.perf_counter() - start:.1f} s")


def matrix_item(flag: str, value: Any, allowed: Collection[Any], key: str) -> None:
    """A matrix item passed by ``dvc.yaml`` (``--agent``, ``--family``, ...) must be one the params list."""
    if value not in allowed:
        raise ConfigError(f"{key}: {flag} {value!r} is not one of {list(allowed)}; add it there or run another item")


def write_trained(save: Callable[[str, T], None], trained: T, log: Any, args: argparse.Namespace) -> None:
    """A training stage's outputs: ``save(--out, trained)`` and the training curve ``log`` at ``--log-out``."""
    save(args.out, trained)
    log.write(args.log_out)
    wrote(args.out, args.log_out)


def wrote(*paths: str | Path) -> None:
    for path in paths:
        print(f"wrote {path}")


# Paths whose last commit identifies the code behind a result. Outputs are left out, so committing
# results does not change it; params.yaml is left out because the report embeds it verbatim, and a
# profile switch must not make the code look modified.
SOURCE_PATHS = ("reml", "stages", "dvc.yaml", "profiles", "pyproject.toml", "constraints.txt")


def source_revision() -> str:
    """The last git commit touching the code, with a note if the code has uncommitted changes."""

    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("log", "-1", "--format=%H", "--", *SOURCE_PATHS)
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if not commit:
        return "uncommitted (no commit yet)"
    return f"{commit} + uncommitted changes" if dirty else commit
