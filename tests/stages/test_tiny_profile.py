"""The whole pipeline on the tiny profile, run once in a fresh copy (the `tiny_run` fixture) and shared:
`dvc repro` makes every output, finite, and a second one runs nothing; a stage killed with SIGKILL
leaves nothing behind; and `python -m reml repro -j 2` on a slice ends where the serial run ended.

Both tests are in this file so that `pytest -n auto --dist loadfile` (make test) runs them on one
worker, which builds the fixture once."""

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from reml import fanout
from reml.core import stagetimes
from reml.families.sinusoid.config import ORACLE_METHODS, SINGLE_RUN, load
from tests.helpers import BIN, outputs, profile_repo
from tests.helpers import run_in as run

# A slice with independent stages, upstream stages shared between them, and a stage with git-tracked
# outputs (evaluate_fewshot) that must run in the workspace afterwards.
TARGETS = ["make_figures"]  # evaluate_fewshot, then a stage downstream of its git-tracked outputs


def dvc(*args, cwd):
    return run([str(BIN / "dvc"), *args], cwd)


def stage_run_names(repo):
    """Names DVC runs under, with matrices expanded against the repository's params (`s@a-b-c`)."""
    listed = dvc("stage", "list", "--name-only", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


@pytest.mark.slow
def test_tiny_profile_end_to_end(tiny_run):
    """`dvc repro` on the tiny profile in a fresh copy: every output exists and is finite, and a second
    `dvc repro` runs nothing."""
    repo, first_stdout = tiny_run
    names = stage_run_names(repo)
    reml_runs = [
        f"train_reml@{a}-{e}-thesis-{r}"
        for e in ("support", "oracle")
        for a in ("reml_ppo", "reml_maskable", "reml_lstm")
        for r in (0, 1)
    ]
    assert set(reml_runs) <= set(names), names
    for name in names:
        assert f"Running stage '{name}'" in first_stdout, f"{name} did not run"

    reports = repo / "reports" / "tiny"  # its own folder: the committed quick results stay as they are
    untouched = subprocess.run(["git", "status", "--porcelain", "--", "reports"], cwd=repo, capture_output=True,
                               text=True, check=True)  # fmt: skip
    assert untouched.stdout == "", untouched.stdout
    metrics = json.loads((reports / "scores" / "sinusoid.json").read_text())
    tiny = load(repo / "params.yaml")
    evaluated = set(tiny.evaluate_fewshot.methods)  # tiny: every method but the variants
    assert set(metrics) == evaluated
    for method, by_k in metrics.items():
        assert set(by_k) == {"k5", "k10", "k20"}
        runs = len(tiny.runs(method))  # fomaml and reptile train once: no spread over seeds
        for leaves in by_k.values():
            stats = ("mse", "ci95", "median", "diverged", "sd_seeds")
            assert set(leaves) == {f"{m}_step{s}" for m in stats for s in (0, 1, 5, 10)} | {"n_runs"}
            assert leaves["n_runs"] == runs == (1 if method in SINGLE_RUN else 2), method
            assert leaves["diverged_step0"] == 0, method
            for name, value in leaves.items():
                stat, _, step = name.rpartition("_step")
                if stat == "sd_seeds" and runs == 1:
                    assert value is None, (method, name)
                elif stat in ("mse", "ci95") and leaves[f"diverged_step{step}"]:
                    assert value is None and math.isfinite(leaves[f"median_step{step}"]), (method, name)
                else:
                    assert value is not None and math.isfinite(value), (method, name)
    paired = json.loads((reports / "scores" / "sinusoid_paired.json").read_text())
    assert paired["reference"] == "reml_maskable" and {"reml_random", "reml_fixed", "maml_matched"} <= set(paired)
    curves = pd.read_csv(reports / "curves" / "sinusoid.csv")
    assert list(curves.step) == list(range(11)) and curves.notna().all().all()
    unrelated = json.loads((reports / "scores" / "sinusoid_unrelated.json").read_text())
    assert set(unrelated) == {"in_distribution", "lines", "quadratics", "sinusoid_large_amplitude",
                              "sinusoid_double_frequency"}  # fmt: skip
    for by_method in unrelated.values():
        assert set(by_method) == evaluated - set(ORACLE_METHODS)
    long = pd.read_csv(reports / "curves" / "sinusoid_long_finetune.csv")
    assert list(long.step) == list(range(101)) and long.notna().all().all()
    figures = sorted(p.name for p in (reports / "figures" / "sinusoid").iterdir())
    assert figures == [
        "curves.png", "examples_k10.png", "examples_k20.png", "examples_k5.png", "long_finetune.png",
        "meta_training.png", "mixed.png", "reml_training.png", "training.png", "unrelated.png",
    ]  # fmt: skip
    mixed = json.loads((reports / "scores" / "sinusoid_mixed.json").read_text())
    assert list(mixed) == ["sinusoid", "lines", "quadratics", "sinusoid_large_amplitude", "sinusoid_double_frequency"]
    for by_method in mixed.values():
        assert list(by_method) == ["scratch", "scratch_deep", "pretrained", "maml_matched", "reml_maskable",
                                   "reml_random", "reml_fixed"]  # fmt: skip
        assert all(leaves["k10"]["n_runs"] == 2 for leaves in by_method.values())
    assert all((reports / "figures" / "sinusoid" / f).stat().st_size > 1000 for f in figures)
    classification = json.loads((reports / "scores" / "classification.json").read_text())
    assert set(classification) == {"glyphs"}
    assert set(classification["glyphs"]) == {
        "scratch",
        "pretrained",
        "pretrained_matched",
        "maml",
        "maml_matched",
        "fomaml",
        "reptile",
        "reml_maskable",
        "reml_random",
        "reml_fixed",
    }
    for method, by_setting in classification["glyphs"].items():
        assert set(by_setting) == {"5w1s", "5w5s"}
        stats = ("acc", "ci95", "diverged", "median") + (() if method in ("fomaml", "reptile") else ("sd_seeds",))
        for leaves in by_setting.values():
            assert set(leaves) == {f"{m}_step{s}" for m in stats for s in (0, 1, 2)} | {"n_runs"}
            assert all(0 <= leaves[f"acc_step{s}"] <= 1 for s in (0, 1, 2))
    assert (reports / "figures" / "classification" / "accuracy.png").stat().st_size > 1000
    rl = json.loads((reports / "scores" / "rl.json").read_text())
    assert set(rl) == {"navigation2d", "cheetah_dir"}
    for by_method in rl.values():
        assert set(by_method) == {"scratch", "pretrained", "pretrained_matched", "oracle", "oracle_finetuned",
                                  "maml_trpo", "maml_trpo_matched", "reml_maskable", "reml_random",
                                  "reml_fixed"}  # fmt: skip
        oracle = by_method["oracle"]  # Finn's: not fine-tuned, its 0-step return in every column
        assert all(oracle[f"return_step{s}"] == oracle["return_step0"] for s in range(4))
        assert by_method["oracle_finetuned"]["return_step0"] == oracle["return_step0"]
        for method, leaves in by_method.items():
            runs = 2 if method.startswith("reml") else 1  # tiny: rl.replicates [0, 1], baseline_replicates [0]
            stats = ("return", "ci95") + (("sd_seeds",) if runs > 1 else ())
            assert set(leaves) == {f"{m}_step{s}" for m in stats for s in range(4)} | {"n_runs"}, method
            assert leaves["n_runs"] == runs and all(math.isfinite(v) for v in leaves.values()), method
    # Headline metrics: one file per setting, one number per method, the ones `dvc metrics show` prints.
    headline = {p.relative_to(reports / "metrics").as_posix(): json.loads(p.read_text())
                for p in sorted((reports / "metrics").rglob("*.json"))}  # fmt: skip
    unrelated_files = [f"sinusoid/unrelated-{n}.json" for n in sorted(set(unrelated) - {"in_distribution"})]
    assert sorted(headline) == sorted(
        ["classification/5w1s.json", "classification/5w5s.json", "rl/cheetah_dir.json", "rl/navigation2d.json",
         "sinusoid/k10.json", "sinusoid/k20.json", "sinusoid/k5.json", *unrelated_files,
         *(f"sinusoid_mixed/{family}.json" for family in mixed)]
    )  # fmt: skip
    lines = headline["sinusoid_mixed/lines.json"]
    assert lines["steps"] == 10 and "reml_maskable" in lines

    def cell(value):
        return "diverged" if value is None else value

    assert headline["sinusoid/k10.json"] == {
        "steps": 10,
        **{m: cell(v["k10"]["mse_step10"]) for m, v in metrics.items()},
    }
    assert headline["rl/cheetah_dir.json"] == {
        "steps": 3,
        **{m: cell(v["return_step3"]) for m, v in rl["cheetah_dir"].items()},
    }
    shown = dvc("metrics", "show", cwd=repo)
    assert shown.returncode == 0 and max(map(len, shown.stdout.splitlines())) < 400, shown.stdout
    summary = run([sys.executable, "-m", "reml", "results"], repo)
    assert summary.returncode == 0, summary.stderr
    assert "== Sinusoid regression" in summary.stdout and "== Few-shot classification" in summary.stdout
    assert "== Meta-RL" in summary.stdout and "K = 20" in summary.stdout and "5-way 5-shot" in summary.stdout
    # A checkpoint records only the params its stage declares, so its bytes in dvc.lock follow them.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    rl_methods = json.loads((repo / "results" / "rl" / "methods.json").read_text())["families"]
    for family in rl:
        maml_config = rl_methods[family]["methods"]["maml_trpo"]["training"]
        expected = set(params["rl"]["maml_trpo"]) | {"replicate", "iterations", "meta_batch", "rollouts", "max_kl",
                                                     "frame_skip", "selected_iteration"}  # fmt: skip
        assert set(maml_config) == expected
        for method, entry in rl_methods[family]["methods"].items():  # step sizes chosen on validation tasks
            assert entry["step_scale"] in params["rl"]["evaluate"]["step_scales"], method
            assert set(entry["validation_objective"]) == {f"{v:g}" for v in params["rl"]["evaluate"]["step_scales"]}
        assert rl_methods[family]["methods"]["reml_maskable"]["aligned_by"] == "episodes"
    rl_curves = pd.read_csv(reports / "curves" / "rl.csv")
    assert list(rl_curves.step) == [0, 1, 2, 3] and rl_curves.notna().all().all()
    assert (reports / "figures" / "rl" / "returns.png").stat().st_size > 1000
    report = (reports / "report.md").read_text()
    assert "## Few-shot classification" in report and "#### 5-way 5-shot" in report and "| reml_fixed | 2 |" in report
    assert "Profile: **tiny**" in report and "#### K = 20" in report and "figures/sinusoid/curves.png" in report
    assert "### RQ1" in report and "### RQ3" in report and "| reml_maskable |" in report
    assert "## Meta-RL" in report and "#### cheetah_dir" in report and "| maml_trpo |" in report
    assert "### The protocol against Finn et al.'s" in report and "| oracle_finetuned |" in report
    assert "- navigation2d, reml_maskable: " in report and "composed" in report
    assert "nan" not in report.lower()
    # The profile switch edits params.yaml only: the report must still name a clean code commit.
    assert re.search(r"Code: commit `[0-9a-f]{40}` \(", report), report[:400]

    second = dvc("repro", cwd=repo)
    assert second.returncode == 0, second.stderr
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date" in second.stdout
    metrics_diff = dvc("metrics", "diff", cwd=repo)  # against the copy's HEAD (the default profile's numbers)
    assert metrics_diff.returncode == 0, metrics_diff.stderr

    # kill -9 in the middle of a stage, then `dvc repro`: dvc.lock, every output and git status as before.
    before = snapshot(repo)
    stray = repo / "models" / "sinusoid" / "reml" / ".reml_ppo-support-thesis-0.partial"
    kill_when_exists(["repro", "--force", "--single-item", "train_reml@reml_ppo-support-thesis-0"], repo, stray)
    assert stray.is_dir()  # SIGKILL leaves it: no `finally` runs
    after = dvc("repro", cwd=repo)
    assert after.returncode == 0, after.stdout + after.stderr
    assert snapshot(repo) == before


def snapshot(repo):
    """dvc.lock, `git status` and the bytes of every output, by path (the killed stage's stray folder is
    left out by .dvcignore and .gitignore, so it must not show)."""
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    files = {}
    for top in ("data", "models", "results", "reports"):
        for path in sorted((repo / top).rglob("*")):
            if path.is_file() and not any(part.endswith(".partial") for part in path.parts):
                files[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return (repo / "dvc.lock").read_text(), status.stdout, files


def kill_when_exists(args, repo, marker, timeout=300):
    """Run ``dvc *args`` and SIGKILL its whole process group as soon as ``marker`` exists."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([str(BIN / "dvc"), *args], cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            assert proc.poll() is None, f"dvc {' '.join(args)} ended before {marker} appeared"
            assert time.monotonic() < deadline, f"{marker} did not appear in {timeout} s"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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


def lock_entries(repo: Path) -> dict:
    path = repo / "dvc.lock"
    return yaml.safe_load(path.read_text())["stages"] if path.exists() else {}


@pytest.mark.slow
def test_parallel_repro_ends_where_a_serial_one_does(tmp_path, tiny_run):
    """Against the serial `dvc repro` of the tiny profile (the end-to-end test's run): every stage of the
    slice gets the same dvc.lock entry and the same output bytes."""
    serial, _ = tiny_run
    parallel = profile_repo(tmp_path / "parallel")
    # A worker killed mid-stage: the run fails, names the stage, and the workspace is untouched; the
    # run-cache holds no entry for the killed stage, so nothing half-made can be restored later.
    killed = kill_stage_when_running(
        [sys.executable, "-m", "reml", "repro", "-j", "2", *TARGETS], parallel, "stages/train_maml.py --variant maml"
    )
    assert killed.returncode == 1, killed.stdout
    assert "failed" in killed.stdout and "train_maml@maml" in killed.stdout, killed.stdout
    assert lock_entries(parallel) == {}
    assert outputs(parallel) == {}
    times = stagetimes.load(parallel / "reports" / "tiny" / stagetimes.FILE_NAME)  # what it measured stays
    assert "train_maml@maml-0" not in times, times  # killed: never timed
    assert run(["git", "status", "--porcelain"], parallel).stdout.split() == ["M", "params.yaml"]  # the profile

    again = run([sys.executable, "-m", "reml", "repro", "-j", "2", *TARGETS], parallel)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Running stage 'train_maml@maml-0'" not in again.stdout  # restored in the workspace, not rerun
    assert "Stage 'train_maml@maml-0' is cached - skipping run" in again.stdout
    # git-tracked outputs: run in a worker, carried back, found unchanged here
    worker_log = (parallel / fanout.FANOUT_DIR / "logs" / "evaluate_fewshot.log").read_text()
    assert "Running stage 'evaluate_fewshot'" in worker_log
    assert "Running stage" not in again.stdout.split("dvc repro in")[-1], again.stdout
    ran, reference = lock_entries(parallel), lock_entries(serial)
    assert {"generate_tasks", "train_maml@maml-0", "evaluate_fewshot", "make_figures"} <= set(ran) < set(reference)
    for name, entry in ran.items():
        assert entry == reference[name], name
    times = stagetimes.load(parallel / "reports" / "tiny" / stagetimes.FILE_NAME)
    assert {"generate_tasks", "train_maml@maml-0", "evaluate_fewshot"} <= set(times), times
    assert all(t["jobs"] == 2 and t["outs"] == {o["path"]: o["md5"] for o in ran[n]["outs"]} for n, t in times.items())
    made = outputs(parallel)
    assert {"reports/tiny/scores/sinusoid.json", "reports/tiny/figures/sinusoid/curves.png"} <= made.keys()
    assert made.items() <= outputs(serial).items()
    assert not list((parallel / fanout.FANOUT_DIR).glob("worker-*")), "worktrees left behind"
    twice = run([str(BIN / "dvc"), "repro", *TARGETS], parallel)
    assert twice.returncode == 0 and "Running stage" not in twice.stdout, twice.stdout
