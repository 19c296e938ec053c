"""`python -m reml repro`: independent stages in parallel on DVC's own machinery (reml/fanout.py).

The plan and the lock book (entries and carried outputs) here, and the cluster recipe's round trip
through a remote, which must recompute nothing on the third machine. That a parallel run ends where
a serial `dvc repro` ends, and that a killed worker leaves nothing DVC would take as a valid result:
tests/stages/test_tiny_profile.py.
"""

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
import yaml

from reml import fanout
from tests.helpers import BIN, GIT_ENV, REPO, outputs, profile_repo
from tests.helpers import run_in as run


def test_plan_fans_out_every_stage_and_carries_the_git_tracked_outputs():
    """Locally every stage goes to a worker. Those with git-tracked outputs (scores, figures, report),
    which DVC's run-cache cannot restore, have every output carried as files. On a cluster (no shared
    files) exactly the run-cacheable stages fan out; the others, and everything downstream of them,
    are left for the workspace."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    def git_tracked(name):
        outs = [o for o in stages[name].get("outs", []) if isinstance(o, dict)]
        return any(not spec.get("cache", True) for o in outs for spec in o.values())

    tracked = [n for n in stages if git_tracked(n)]
    local = fanout.plan(REPO)
    assert local.tail == [] and list(local.carried) == tracked
    assert local.carried["make_report"] == ["reports/report.md"]
    assert {"results/sinusoid/methods.json", "reports/scores/sinusoid.json"} <= set(local.carried["evaluate_fewshot"])
    assert {"evaluate_fewshot", "make_figures", "evaluate_rl"} <= local.upstream["make_report"]
    assert "train_maml@maml-0" in local.upstream["evaluate_fewshot"]
    assert "results/sinusoid/methods.json" in local.ignored and "reports/scores/sinusoid.json" not in local.ignored

    plan = fanout.plan(REPO, carry=False)
    assert plan.tail == tracked and plan.carried == {}
    assert {name.split("@")[0] for name in plan.order}.isdisjoint(plan.tail)
    assert "train_reml@reml_maskable-support-thesis-0" in plan.order and "generate_tasks" in plan.order
    for name, upstream in plan.upstream.items():
        assert upstream <= set(plan.order), name
    assert (
        plan.upstream["train_scratch@scratch-0"] == {"generate_tasks"} and plan.upstream["train_maml@maml-0"] == set()
    )
    count = {name: rank[1] for name, rank in plan.priority().items()}
    assert count["generate_tasks"] > count["train_maml@maml-0"] == 0


def test_carried_outputs_travel_as_exact_copies(tmp_path):
    """A carried stage's outputs, a file and a directory, reach the next worktree as they were made: a
    stale file left there from an earlier run is gone. An output the stage did not make is an error."""
    made, worker = tmp_path / "made", tmp_path / "worker"
    (made / "figures").mkdir(parents=True)
    (made / "figures" / "a.png").write_bytes(b"new a")
    (made / "scores.json").write_text("{}")
    (made / "dvc.lock").write_text("schema: '2.0'\nstages:\n  figures:\n    cmd: draw\n")
    (worker / "figures").mkdir(parents=True)
    (worker / "figures" / "stale.png").write_bytes(b"old")
    (worker / "figures" / "a.png").write_bytes(b"old a")
    book = fanout.LockBook({"figures": ["figures", "scores.json"], "gone": ["nowhere.json"]}, tmp_path / "store")
    book.take(made / "dvc.lock", "figures")
    (made / "figures" / "a.png").write_bytes(b"changed after")  # the store holds what the stage made
    book.write_into(worker / "dvc.lock")
    assert sorted(p.name for p in (worker / "figures").iterdir()) == ["a.png"]
    assert (worker / "figures" / "a.png").read_bytes() == b"new a" and (worker / "scores.json").read_text() == "{}"
    assert "cmd: draw" in (worker / "dvc.lock").read_text()
    (made / "dvc.lock").write_text("schema: '2.0'\nstages:\n  gone:\n    cmd: x\n")
    with pytest.raises(fanout.FanoutError, match="nowhere.json"):
        book.take(made / "dvc.lock", "gone")


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


@pytest.mark.slow
def test_cluster_round_trip_through_a_remote_recomputes_nothing(tmp_path):
    """Two "nodes" (clones) each run a slice through submitit's local executor and push to a directory
    remote; a third clone's `dvc pull --run-cache && dvc repro` restores everything and runs nothing."""
    source = profile_repo(tmp_path / "source")
    params = source / "params.yaml"  # one replicate: the round trip, not the matrix, is under test
    params.write_text(re.sub(r"^replicates: \[0, 1\]$", "replicates: [0]", params.read_text(), count=1, flags=re.M))
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


def test_sigterm_and_a_background_sigint_stop_the_runner_like_ctrl_c():
    """A scheduler's SIGTERM, and the SIGINT a shell ignores in a background job, reach fan_out as
    KeyboardInterrupt, which kills the running stages (without the handlers this process would die)."""
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in `nohup make repro JOBS=2 &`
        fanout.stop_like_ctrl_c()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), sig)
                time.sleep(5)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_a_carried_stage_s_new_cached_output_is_git_ignored_as_dvc_repro_would(tmp_path):
    """A carried stage is found unchanged in the workspace, so DVC does not add its cached outputs to
    .gitignore; the runner does, with DVC's code: once, and beside the entries already there."""
    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=repo, check=True)
    (repo / "results" / ".gitignore").write_text("/methods.json\n")
    (repo / "results" / "new.json").write_text("{}")
    fanout.ignore_outputs(repo, ["results/new.json", "results/methods.json"])
    fanout.ignore_outputs(repo, ["results/new.json"])
    assert (repo / "results" / ".gitignore").read_text() == "/methods.json\n/new.json\n"
    listed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "results/new.json" not in listed


def test_plan_knows_the_stage_times_file_and_who_reads_it():
    """The report reads the profile's stage times: the runner must find that file and never time the
    stage that reads it (its own time would change its input)."""
    local = fanout.plan(REPO)
    assert local.times == "reports/stage_times.json" and local.timed_by == ["make_report"]
    assert "train_maml@maml-0" in local.stages


class _Recorder:
    """An executor that runs nothing: each stage 'succeeds' at once, in the order it was submitted."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def submit(self, stage, log, lock) -> Future:
        self.started.append(stage)
        done = Future()
        done.set_result(None)
        return done

    def done(self, future):
        return Path("/nonexistent")

    def close(self) -> None:
        pass


def test_the_longest_recorded_chain_starts_first_then_the_most_waited_on(tmp_path, monkeypatch):
    """Critical-path order: with recorded times, a stage heading a long chain (rl, then its 2,000 s
    evaluation) starts before stages that more others wait on but that end soon; an unrecorded stage
    counts as the median time. With no times at all the count alone decides, as before."""
    upstream = {"gen": set(), "s1": {"gen"}, "s2": {"gen"}, "s3": {"gen"}, "rl": set(), "eval_rl": {"rl"},
                "report": {"s1", "s2", "s3", "eval_rl"}}  # fmt: skip
    order = list(upstream)
    timed = fanout.Plan(upstream=upstream, order=order, tail=[],
                        seconds={"gen": 5, "s1": 60, "s2": 60, "rl": 600, "eval_rl": 2000, "report": 10})  # fmt: skip
    ranks = timed.priority()
    assert ranks["s3"][0] == 60 + 10 and ranks["rl"] == (2610, 2) and ranks["gen"] == (75, 4)
    monkeypatch.setattr(fanout.LockBook, "take", lambda self, lockfile, stage: self.entries.__setitem__(stage, {}))
    executor = _Recorder()
    fanout.fan_out(timed, executor, jobs=1, logs=tmp_path / "logs", say=lambda _: None)
    assert executor.started[:3] == ["rl", "eval_rl", "gen"] and executor.started[-1] == "report"
    executor = _Recorder()
    fanout.fan_out(fanout.Plan(upstream=upstream, order=order, tail=[]), executor, jobs=1, logs=tmp_path / "l2",
                   say=lambda _: None)  # fmt: skip
    assert executor.started[:2] == ["gen", "rl"] and executor.started[-1] == "report"


def _times_plan(**kw) -> fanout.Plan:
    return fanout.Plan(upstream={}, order=[], tail=[], times="reports/stage_times.json", timed_by=["make_report"],
                       stages=["a", "b", "c", "make_report"], **kw)  # fmt: skip


def test_stage_times_record_only_what_dvc_ran_and_reach_every_worktree(tmp_path):
    """A stage DVC ran gets its seconds, the runner's jobs and this machine; one DVC restored from the
    run-cache or skipped does not (its earlier time stands); the reader of the file is never timed. The
    workspace's file is rewritten after each stage and the lock book carries it into worktrees."""
    from reml.core import stagetimes

    root, worktree = tmp_path / "root", tmp_path / "worker"
    (root / "reports").mkdir(parents=True)
    lock = fanout.LockBook()
    times = fanout.StageTimes(root, _times_plan(), jobs=2, lock=lock)
    entry = {"outs": [{"path": "models/a.safetensors", "md5": "123"}]}
    times.record("a", 12.34, "Running stage 'a':\n> python stages/a.py\n", entry)
    times.record("b", 99.0, "Stage 'b' is cached - skipping run, checking out outputs\n", entry)
    times.record("make_report", 5.0, "Running stage 'make_report':\n", entry)
    recorded = stagetimes.load(root / "reports" / "stage_times.json")
    assert list(recorded) == ["a"]
    assert recorded["a"]["seconds"] == 12.3 and recorded["a"]["jobs"] == 2
    assert recorded["a"]["outs"] == {"models/a.safetensors": "123"} and "cores" in recorded["a"]["machine"]
    worktree.mkdir()
    lock.write_into(worktree / "dvc.lock")
    carried = worktree / "reports" / "stage_times.json"
    assert carried.read_text() == (root / "reports" / "stage_times.json").read_text()


def test_stage_times_drop_a_stage_whose_outputs_changed_outside_the_runner(tmp_path):
    """An entry stands while the workspace's dvc.lock names the outputs it timed, or names nothing for it
    (a stopped run's stage, which the next run restores); a stage rerun by plain `dvc repro` since (other
    outputs) or gone from dvc.yaml loses its entry when the runner starts."""
    from reml.core import stagetimes

    root = tmp_path
    entry = {"seconds": 1.0, "jobs": 1, "machine": "x, 2 cores", "finished": "2026-12-03 10:00 UTC",
             "outs": {"m/a": "111"}}  # fmt: skip
    path = root / "reports" / "stage_times.json"
    path.parent.mkdir()
    stopped = {**entry, "outs": {"m/c": "333"}}
    path.write_text(stagetimes.render({"a": entry, "b": {**entry, "outs": {"m/b": "222"}}, "gone": entry,
                                       "c": stopped}))  # fmt: skip
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "a": {"cmd": "x", "outs": [{"path": "m/a", "md5": "111"}]},
        "b": {"cmd": "x", "outs": [{"path": "m/b", "md5": "999"}]},
        "gone": {"cmd": "x", "outs": [{"path": "m/a", "md5": "111"}]}}}))  # fmt: skip
    fanout.StageTimes(root, _times_plan(), jobs=2, lock=fanout.LockBook())
    assert list(stagetimes.load(path)) == ["a", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"stages": []}', "'stages' mapping"),
        ('{"stages": {"a": {"seconds": 1}}}', "stages.a: expected the fields"),
        ('{"stages": {"a": {"seconds": NaN, "jobs": 1, "machine": "m", "finished": "f", "outs": {}}}}', "seconds"),
        ('{"stages": {"a": {"seconds": 1, "jobs": "2", "machine": "m", "finished": "f", "outs": {}}}}', "jobs"),
    ],
)
def test_a_malformed_stage_times_file_is_named_with_its_entry(tmp_path, text, message):
    from reml.core import stagetimes
    from reml.core.io import ArtifactError

    path = tmp_path / "stage_times.json"
    path.write_text(text)
    with pytest.raises(ArtifactError, match=message) as err:
        stagetimes.load(path)
    assert str(path) in str(err.value)
