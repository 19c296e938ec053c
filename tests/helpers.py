"""What several test modules share: the repository's paths and running a stage as DVC would."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the environment's bin/ (python, dvc)


def run_stage(script: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run a stage script as DVC would, capturing its output."""
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / script), *args], cwd=cwd, capture_output=True, text=True
    )


def copy_repo(dest: Path) -> Path:
    """Copy the files git would commit (tracked plus untracked-but-not-ignored) into ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest
