"""What several test modules share: the repository's paths and running a stage as DVC would."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the environment's bin/ (python, dvc)
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


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


def run_in(cmd: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the copy ``cwd`` with the environment's python and dvc first on PATH."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(cwd)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, **kwargs)


def profile_repo(dest: Path, profile: str = "tiny") -> Path:
    """A git repository at ``dest`` holding what a fresh clone would, switched to ``profile``.

    The committed dvc.lock is left out: its entries are the quick profile's, which a tiny run replaces
    anyway, and DVC rereads and rewrites the whole file after every stage (about 4 s of the 7.6 s one
    tiny training stage took with the quick entries in it)."""
    repo = copy_repo(dest)
    (repo / "dvc.lock").unlink()
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy", "--no-gpg-sign"]):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    switch = run_in([sys.executable, "-m", "reml", "profile", profile], repo)
    assert switch.returncode == 0, switch.stderr
    return repo


def outputs(repo: Path) -> dict[str, str]:
    """sha256 of every output file under data/, models/, results/ and reports/tiny/ (not .gitignore, nor the
    parallel runner's record of stage times, which is about the machine: reml/core/stagetimes.py)."""
    files = [p for d in ("data", "models", "results", "reports/tiny") for p in sorted((repo / d).rglob("*"))]
    files = [p for p in files if p.is_file() and p.name not in (".gitignore", "stage_times.json")]
    return {p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
