"""Plumbing shared by the thin scripts in ``stages/``: argument parsing, validation, clean errors.

A stage script defines ``run(args, params)`` and ends with ``main(run, parser)``. Everything that
can be checked (the whole params file, every input artifact) is checked before any compute; a bad
value ends the stage with one line naming the key or file, not a traceback.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from reml.config import META_LEARNERS, ConfigError, Params, SinusoidConfig, load_params
from reml.io import ArtifactError
from reml.seeding import configure_torch
from reml.tasks import SinusoidDistribution


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return p


def main(
    run: Callable[[argparse.Namespace, Params], None],
    arg_parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> None:
    """Parse arguments and params, then call ``run``; exit 1 with a one-line message on bad input."""
    args = arg_parser.parse_args(argv)
    configure_torch()
    start = time.perf_counter()
    try:
        params = load_params(args.params)
        run(args, params)
    except ConfigError as err:
        sys.exit(f"error in {args.params}: {err}")
    except ArtifactError as err:
        sys.exit(f"error: {err}")
    print(f"{Path(sys.argv[0]).stem}: done in {time.perf_counter() - start:.1f} s")


def sinusoid_distribution(cfg: SinusoidConfig) -> SinusoidDistribution:
    return SinusoidDistribution(amplitude=cfg.amplitude, phase=cfg.phase, x_range=cfg.x_range)


def producing_stage(method: str) -> str:
    """The DVC stage that writes a method's checkpoint (meta-learners come from the train_maml matrix)."""
    return f"train_maml@{method}" if method in META_LEARNERS else f"train_{method}"


def reml_run(agent: str, encoding: str, seed: int) -> str:
    """Name of one train_reml run: its directory under models/sinusoid/reml/ and its DVC matrix key."""
    return f"{agent}-{encoding}-{seed}"


def wrote(*paths: str | Path) -> None:
    for path in paths:
        print(f"wrote {path}")


# Paths whose last commit identifies the code behind a result. Outputs are left out, so committing
# results does not change it; params.yaml is left out because the report embeds it verbatim, and a
# profile switch must not make the code look modified.
SOURCE_PATHS = (
    "reml",
    "baselines",
    "stages",
    "dvc.yaml",
    "profiles",
    "pyproject.toml",
    "constraints.txt",
)


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
