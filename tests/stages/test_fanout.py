"""`python -m reml repro`: independent stages in parallel on DVC's own machinery (reml/fanout.py).

The parallel run must end where a serial `dvc repro` ends (same dvc.lock, same bytes, nothing left to
run), a killed worker must leave nothing DVC would take as a valid result, and the cluster recipe's
round trip through a remote must recompute nothing on the third machine.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from reml import fanout
from tests.helpers import BIN, REPO, copy_repo

# A slice of the tiny profile with independent stages, upstream stages shared between them, and a
# stage with git-tracked outputs (evaluate_fewshot) that must run in the workspace afterwards.
TARGETS = ["evaluate_fewshot"]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def test_plan_fans_out_exactly_the_run_cacheable_stages():
    """Every stage whose outputs DVC's run-cache keeps goes to a worker; the others (scores, figures,
    report: git-tracked outputs) are left for the workspace, and so is everything downstream of them."""
    plan = fanout.plan(REPO)
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    def git_tracked(name):
        outs = [o for o in stages[name].get("outs", []) if isinstance(o, dict)]
        return any(not spec.get("cache", True) for o in outs for spec in o.values())

    assert plan.tail == [n for n in stages if git_tracked(n)]
    assert {name.split("@")[0] for name in plan.order}.isdisjoint(plan.tail)
    assert "train_reml@reml_maskable-support-thesis-0" in plan.order and "generate_tasks" in plan.order
    for name, upstream in plan.upstream.items():
        assert upstream <= set(plan.order), name
    assert (
        plan.upstream["train_scratch@scratch-0"] == {"generate_tasks"} and plan.upstream["train_maml@maml-0"] == set()
    )
    priority = plan.priority()
    assert priority["generate_tasks"] > priority["train_maml@maml-0"] == 0


def test_lock_entries_travel_in_place_with_dvc_s_own_yaml(tmp_path):
    """A worker's entry replaces the workspace's where it stands (dvc.lock keeps its order) and adds
    the stages it lacks; nothing else in the file changes."""
    ran = tmp_path / "worker.lock"
    ran.write_text("schema: '2.0'\nstages:\n  b:\n    cmd: new b\n  c:\n    cmd: c\n")
    workspace = tmp_path / "dvc.lock"
    workspace.write_text("schema: '2.0'\nstages:\n  a:\n    cmd: a\n  b:\n    cmd: old b\n")
    book = fanout.LockBook()
    book.write_into(workspace)  # nothing finished yet: untouched
    assert workspace.read_text().endswith("cmd: old b\n")
    book.take(ran, "b")
    book.take(ran, "c")
    book.write_into(workspace)
    assert workspace.read_text() == "schema: '2.0'\nstages:\n  a:\n    cmd: a\n  b:\n    cmd: new b\n  c:\n    cmd: c\n"
    with pytest.raises(fanout.FanoutError, match="no entry for d"):
        book.take(ran, "d")
    fresh = tmp_path / "none" / "dvc.lock"
    fresh.parent.mkdir()
    book.write_into(fresh)
    assert fresh.read_text().startswith("schema: '2.0'\nstages:\n  b:")


def git_repo(path: Path, profile: str = "tiny") -> Path:
    repo = copy_repo(path)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy", "--no-gpg-sign"]):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    switch = run([sys.executable, "-m", "reml", "profile", profile], repo)
    assert switch.returncode == 0, switch.stderr
    return repo


def run(cmd, cwd, **kwargs):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(cwd)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, **kwargs)


def outputs(repo: Path) -> dict[str, str]:
    """sha256 of every output file under data/, models/, results/ and reports/tiny/ (not .gitignore)."""
    files = [p for d in ("data", "models", "results", "reports/tiny") for p in sorted((repo / d).rglob("*"))]
    files = [p for p in files if p.is_file() and p.name != ".gitignore"]
    return {p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def kill_stage_when_running(cmd, repo: Path, pattern: str) -> subprocess.CompletedProcess:
    """Start ``cmd`` and SIGKILL the stage process whose command line contains ``pattern`` once it runs."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        if found:
            for pid in found:
                os.kill(int(pid), signal.SIGKILL)
            break
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


@pytest.mark.slow
def test_parallel_repro_ends_where_a_serial_one_does(tmp_path):
    serial = git_repo(tmp_path / "serial")
    done = run([str(BIN / "dvc"), "repro", *TARGETS], serial)
    assert done.returncode == 0, done.stdout + done.stderr

    parallel = git_repo(tmp_path / "parallel")
    lock_before = (parallel / "dvc.lock").read_bytes()
    # A worker killed mid-stage: the run fails, names the stage, and the workspace is untouched; the
    # run-cache holds no entry for the killed stage, so nothing half-made can be restored later.
    killed = kill_stage_when_running(
        [sys.executable, "-m", "reml", "repro", "-j", "2", *TARGETS], parallel, "stages/train_maml.py --variant maml"
    )
    assert killed.returncode == 1, killed.stdout
    assert "failed" in killed.stdout and "train_maml@maml" in killed.stdout, killed.stdout
    assert (parallel / "dvc.lock").read_bytes() == lock_before
    assert outputs(parallel) == {}
    assert run(["git", "status", "--porcelain"], parallel).stdout.split() == ["M", "params.yaml"]  # the profile

    again = run([sys.executable, "-m", "reml", "repro", "-j", "2", *TARGETS], parallel)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Running stage 'train_maml@maml-0'" not in again.stdout  # restored in the workspace, not rerun
    assert "Stage 'train_maml@maml-0' is cached - skipping run" in again.stdout
    assert "Running stage 'evaluate_fewshot'" in again.stdout  # git-tracked outputs: run here
    assert (parallel / "dvc.lock").read_text() == (serial / "dvc.lock").read_text()
    assert outputs(parallel) == outputs(serial) and outputs(serial)
    assert not list((parallel / fanout.FANOUT_DIR).glob("worker-*")), "worktrees left behind"
    twice = run([str(BIN / "dvc"), "repro", *TARGETS], parallel)
    assert twice.returncode == 0 and "Running stage" not in twice.stdout, twice.stdout


@pytest.mark.slow
def test_cluster_round_trip_through_a_remote_recomputes_nothing(tmp_path):
    """Two "nodes" (clones) each run a slice through submitit's local executor and push to a directory
    remote; a third clone's `dvc pull --run-cache && dvc repro` restores everything and runs nothing."""
    source = git_repo(tmp_path / "source")
    commit = [["git", "add", "-A"], ["git", "commit", "-qm", "tiny", "--no-gpg-sign"]]
    for cmd in commit:
        subprocess.run(cmd, cwd=source, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    store = tmp_path / "store"
    nodes = {}
    for name in ("node1", "node2", "reader"):
        subprocess.run(["git", "clone", "-q", str(source), str(tmp_path / name)], check=True)
        added = run([str(BIN / "dvc"), "remote", "add", "--local", "-d", "store", str(store)], tmp_path / name)
        assert added.returncode == 0, added.stderr
        nodes[name] = tmp_path / name
    slices = {"node1": ["generate_tasks", "train_maml"], "node2": ["train_pretrained", "train_oracle"]}
    for name, targets in slices.items():
        done = run([sys.executable, "-m", "reml", "repro", "--cluster", "local", "-j", "2", *targets], nodes[name])
        assert done.returncode == 0, done.stdout + done.stderr
    logs = {p.name: p.read_text() for p in (nodes["node2"] / fanout.FANOUT_DIR / "logs").iterdir()}
    assert "Stage 'generate_tasks' is cached - skipping run" in logs["generate_tasks.log"]  # node 1's, via the remote
    assert not [name for name, text in logs.items() if "Running stage 'generate_tasks'" in text]

    reader = nodes["reader"]
    pulled = run([str(BIN / "dvc"), "pull", "--run-cache", "--allow-missing"], reader)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    everything = [t for targets in slices.values() for t in targets]
    # --pull: `dvc pull --run-cache` fetched the entries; restoring one fetches the outputs it names
    restored = run([str(BIN / "dvc"), "repro", "--pull", *everything], reader)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "Running stage" not in restored.stdout, restored.stdout
    # generate_tasks, maml and maml_matched, pretrained (two) and oracle, each per replicate: restored, none run
    replicates = len(yaml.safe_load((reader / "params.yaml").read_text())["replicates"])
    assert restored.stdout.count("is cached - skipping run") == 1 + 5 * replicates, restored.stdout
    made = {**outputs(nodes["node1"]), **outputs(nodes["node2"])}
    assert outputs(reader) == made and "models/sinusoid/maml-0.safetensors" in made
    assert "changed" not in run([str(BIN / "dvc"), "status", *everything], reader).stdout
