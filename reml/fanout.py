"""``dvc repro`` with the independent stages of the DAG run N at a time, locally or on a cluster.

Built on DVC's own machinery, not around it (docs/compute.md):

1. Each worker is a git worktree of this repository (under ``.dvc/tmp/fanout/``) holding the
   workspace's uncommitted changes, so it runs exactly the code and params of the workspace.
2. A stage runs in a worker as ``dvc repro <stage>``: the stages upstream of it, already run by some
   worker, are restored from DVC's run-cache ("Stage is cached - skipping run"), not run again.
   Locally the workers share this workspace's cache (``cache.dir``); on a cluster each job has its
   own cache and they exchange results through the default DVC remote (``dvc repro --pull`` before,
   ``dvc push --run-cache`` after).
3. When every fanned-out stage is done, their dvc.lock entries go into this workspace's dvc.lock and
   ``dvc repro`` here restores each of them from the cache (checking out the outputs the entries name)
   and runs what is left, so a following ``dvc repro`` runs nothing.

Why the entries travel (:class:`LockBook`): where a stage's deps still match its dvc.lock entry, DVC
restores the outputs that entry names and does not look in the run-cache. A fresh clone on another
CPU type reproduces other bits than the committed entry names, so without the worker's entry DVC would
run the stage again, in every worker downstream of it and once more here. The entries are written
with DVC's own YAML code, into each worker before its next stage and into this workspace only after
every worker succeeded.

DVC's run-cache keeps only stages whose outputs are all cached, metrics or plots; a stage with other
git-tracked outputs (``cache: false``: the scores, curves, figures and report under ``reports/``)
cannot be restored from it. Locally such a stage still runs in a worker, and its outputs travel as
files with its entry (:class:`LockBook`): into each worker before its next stage, so a stage
downstream finds them up to date, and into this workspace at the end, where ``dvc repro`` finds the
stage unchanged. On a cluster the jobs share no files, so these stages run in step 3, here. A failed
or killed worker leaves this workspace untouched: DVC records a run in the run-cache only after it
succeeded, the carried outputs wait under ``.dvc/tmp/fanout/``, and step 3 does not start.

Clusters go through submitit (Slurm, or its local executor on this machine): see :class:`Submitit`.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from reml.core import stagetimes

FANOUT_DIR = Path(".dvc/tmp/fanout")  # git-ignored by DVC's own .dvc/.gitignore


class FanoutError(RuntimeError):
    """A worker failed: the message names the stage and its log."""


# --------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """The stages to fan out, each with the fanned-out stages it depends on, in dvc.yaml order."""

    upstream: dict[str, set[str]]
    order: list[str]
    tail: list[str]  # stages of the targets that run in this workspace afterwards
    targets: list[str] = field(default_factory=list)
    carried: dict[str, list[str]] = field(default_factory=dict)  # fanned out, not run-cacheable: their outputs
    ignored: list[str] = field(default_factory=list)  # the cached ones among them (DVC git-ignores those)
    times: str | None = None  # the stage-times file some stage reads (reml.core.stagetimes), if any
    timed_by: list[str] = field(default_factory=list)  # the stages that read it: never timed
    stages: list[str] = field(default_factory=list)  # every stage of dvc.yaml

    seconds: dict[str, float] = field(default_factory=dict)  # each stage's last recorded time, where known

    def priority(self) -> dict[str, tuple[float, int]]:
        """Which ready stage starts first: the longest chain of recorded stage times from it to the end of
        the plan (critical-path list scheduling), then how many fanned-out stages wait on it, directly or
        not. A stage with no recorded time counts as the median of the recorded ones (0 when none is, so
        a first run orders by the count alone)."""
        below = {name: {n for n, up in self.upstream.items() if name in up} for name in self.order}
        known = sorted(self.seconds[n] for n in self.order if n in self.seconds)
        guess = known[len(known) // 2] if known else 0.0
        chain: dict[str, float] = {}

        def longest(name: str) -> float:  # the DAG is acyclic (DVC checks), dvc.yaml order need not be topological
            if name not in chain:
                chain[name] = self.seconds.get(name, guess) + max(map(longest, below[name]), default=0.0)
            return chain[name]

        count = {}
        for name in self.order:
            seen, todo = set(), list(below[name])
            while todo:
                n = todo.pop()
                if n not in seen:
                    seen.add(n)
                    todo.extend(below[n])
            count[name] = len(seen)
        return {name: (longest(name), count[name]) for name in self.order}


def hashable(stage) -> bool:
    """DVC's rule for a stage it can key by its deps: a command, local deps and local, non-persistent
    outputs inside the repository (``_can_hash``, dvc/stage/cache.py)."""
    if not (stage.cmd and stage.deps and stage.outs) or stage.always_changed:
        return False
    if not all(dep.protocol == "local" and dep.def_path for dep in stage.deps):
        return False
    return all(out.protocol == "local" and out.is_in_repo and not out.persist for out in stage.outs)


def run_cacheable(stage) -> bool:
    """DVC's own rule: a run is kept in the run-cache if the stage is :func:`hashable` and has no
    uncached output that is neither a metric nor a plot (``Stage.run``, dvc/stage/__init__.py)."""
    return hashable(stage) and all(out.use_cache or out.is_metric or out.is_plot for out in stage.outs)


def plan(root: str | Path, targets: Sequence[str] = (), carry: bool = True) -> Plan:
    """The stages of ``targets`` (every stage when empty) and their upstream, split into those a worker
    can run and the tail. A worker runs a run-cacheable stage; with ``carry`` (workers that share this
    machine's files) also a hashable one whose outputs are git-tracked, which are then carried as files.
    Everything downstream of a stage that cannot fan out stays in the tail."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        chosen = set()
        for target in targets or [None]:
            found = repo.stage.collect(target) if target else list(graph.nodes)
            for stage in found:
                chosen |= {stage} | nx.descendants(graph, stage)
        order = [s for s in repo.index.stages if s in chosen]  # dvc.yaml order
        # a stage without a command (a .dvc data source) holds nothing up; any other uncacheable stage
        # keeps everything downstream of it for the workspace
        can = hashable if carry else run_cacheable
        blocks = {s for s in chosen if s.cmd and not can(s)}
        fan = {s for s in order if s.cmd and can(s) and not (nx.descendants(graph, s) & blocks)}
        upstream = {s.addressing: {u.addressing for u in graph.successors(s) if u in fan} for s in order if s in fan}
        carried = [s for s in order if s in fan and not run_cacheable(s)]
        readers = {d.def_path: s.addressing for s in repo.index.stages for d in s.deps
                   if Path(d.def_path).name == stagetimes.FILE_NAME}  # fmt: skip
        if len(readers) > 1:
            raise FanoutError(f"more than one {stagetimes.FILE_NAME} is a dependency: {sorted(readers)}")
        times = next(iter(readers), None)
        recorded = stagetimes.load(Path(root) / times) if times else {}
        return Plan(
            upstream=upstream,
            order=[s.addressing for s in order if s in fan],
            tail=[s.addressing for s in order if s not in fan],
            targets=list(targets),
            carried={s.addressing: [o.def_path for o in s.outs] for s in carried},
            ignored=[o.def_path for s in carried for o in s.outs if o.use_cache],
            times=times,
            timed_by=[s.addressing for s in repo.index.stages if any(d.def_path in readers for d in s.deps)],
            stages=[s.addressing for s in repo.index.stages],
            seconds={name: entry["seconds"] for name, entry in recorded.items()},
        )


# --------------------------------------------------------------------------- workers


def git(*args: str, cwd: str | Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise FanoutError(f"git {' '.join(args)} in {cwd}: {done.stderr.strip()}")
    return done.stdout


def make_worktree(root: Path, path: Path, cache_dir: str | None) -> Path:
    """A worktree of ``root`` at ``path`` with the workspace's uncommitted changes (tracked and
    untracked, not ignored) and, when given, ``cache_dir`` as its DVC cache."""
    if path.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=root, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)
    git("worktree", "prune", cwd=root)
    path.parent.mkdir(parents=True, exist_ok=True)
    git("worktree", "add", "--quiet", "--detach", str(path), "HEAD", cwd=root)
    # a plain patch whatever the user's git config (colours, external diff tools, prefixes, textconv)
    plain = ["--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/"]
    diff = subprocess.run(["git", "diff", *plain, "HEAD"], cwd=root, capture_output=True, check=True).stdout
    if diff:
        applied = subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=path, input=diff, capture_output=True)
        if applied.returncode != 0:
            raise FanoutError(f"could not copy the workspace's changes to {path}: {applied.stderr.decode().strip()}")
    for name in git("ls-files", "--others", "--exclude-standard", "-z", cwd=root).split("\0"):
        if not name:
            continue
        source = root / name
        if source.is_dir() and not source.is_symlink():  # listed as dir/: a nested repository
            raise FanoutError(f"{source} is an untracked git repository; commit, ignore or remove it first")
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, path / name, follow_symlinks=False)
    local = root / ".dvc" / "config.local"
    if local.is_file():
        shutil.copy2(local, path / ".dvc" / "config.local")
    if cache_dir:
        dvc("config", "--local", "cache.dir", cache_dir, cwd=path)
    return path


# This environment's dvc, and its bin/ first on PATH for the stages' `python` (as `make` does).
BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc") if (BIN / "dvc").exists() else "dvc"
CHILDREN: set[subprocess.Popen] = set()  # running stage processes, killed if the runner is interrupted


def environment(cwd: str | Path) -> dict[str, str]:
    # PYTHONPATH: the worktree's own reml, not the editable install's
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(cwd)}


def dvc(*args: str, cwd: str | Path, log: Path | None = None) -> None:
    """Run ``dvc *args`` in ``cwd`` (output appended to ``log``); FanoutError on failure."""
    env = environment(cwd)
    if log is None:
        done = subprocess.run([DVC, *args], cwd=cwd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise FanoutError(f"dvc {' '.join(args)} in {cwd}: {done.stderr.strip() or done.stdout.strip()}")
        return
    with log.open("a") as out:
        out.write(f"$ dvc {' '.join(args)}\n")
        out.flush()
        # its own session, so that kill_children() can stop the stage's whole process group
        proc = subprocess.Popen([DVC, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
        CHILDREN.add(proc)
        try:
            code = proc.wait()
        finally:
            CHILDREN.discard(proc)
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise FanoutError(f"dvc {' '.join(args)} failed (exit {code}) in {cwd}; log {log}:\n{tail}")


def run_in_worktree(worktree: str, stage: str, log: str, through_remote: bool) -> None:
    """What one worker does for one stage (also the body of a submitit job). Locally, upstream results
    come from the shared cache's run-cache; on a cluster (``through_remote``) from the default remote,
    where the stage's result goes afterwards."""
    cwd, path = Path(worktree), Path(log)
    if not through_remote:
        dvc("repro", stage, cwd=cwd, log=path)
    else:
        dvc("repro", "--pull", stage, cwd=cwd, log=path)
        push_runs(cwd, path)


def push_runs(worktree: Path, log: Path) -> None:
    """``dvc push --run-cache``, and the outputs its entries name. DVC 3 pushes the entries but, of their
    outputs, only the cached ones in dvc.lock; a stage's git-tracked plots and metrics (the training
    curves here), which the run-cache keeps in the cache, stay behind, and a run on another machine
    could not be restored. So both halves go through DVC's own run-cache API."""
    from dvc.repo import Repo

    with contextlib.chdir(worktree), Repo(".") as repo:  # run-cache stages are made relative to the cwd
        entries = repo.stage_cache.push(None)  # to the default remote
        results = [repo.cloud.push(objs) for objs in repo.stage_cache.get_used_objs(entries).values()]
    failed = sum(len(r.failed) for r in results)
    if failed:
        raise FanoutError(f"{worktree}: {failed} outputs could not be pushed to the default remote")
    with log.open("a") as out:
        pushed = sum(len(r.transferred) for r in results)
        out.write(f"pushed {len(entries)} run-cache entries and {pushed} objects to the default remote\n")


def pull_outputs(root: Path, entries: dict[str, object]) -> None:
    """Fetch from the default remote every output the dvc.lock ``entries`` name, git-tracked plots and
    metrics included, into ``root``'s cache: the other half of :func:`push_runs`. (``dvc repro --pull``
    fetches only the cached ones for a stage whose entry already matches, then calls it up to date with
    its plots missing.)"""
    from dvc.repo import Repo

    with contextlib.chdir(root), Repo(".") as repo:
        for entry in entries.values():
            stage = repo.stage_cache._create_stage(entry)  # a stage whose every output is cached
            for objs in stage.get_used_objs().values():
                failed = repo.cloud.pull(objs).failed
                if failed:
                    raise FanoutError(f"{len(failed)} outputs of a finished stage are not in the default remote")


def kill_children() -> None:
    """Stop every running stage (Ctrl-C of the runner: the stages are in sessions of their own, so the
    terminal's SIGINT does not reach them)."""
    for proc in list(CHILDREN):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


class LockBook:
    """The dvc.lock entries of the stages finished so far, taken from the worktree that ran each one and
    written, with DVC's own YAML code, into a worktree before its next stage and into the workspace at
    the end (see the module docstring for why). The outputs of the ``carried`` stages (not
    run-cacheable: git-tracked) go with their entries, as files kept under ``store`` meanwhile; every
    output of such a stage travels, so that DVC finds the stage unchanged and never removes them."""

    def __init__(self, carried: dict[str, list[str]] | None = None, store: Path | None = None) -> None:
        self.entries: dict[str, object] = {}
        self.carried, self.store = carried or {}, store
        self.outputs: list[str] = []  # paths under store, relative to a repository's root
        self.files: dict[str, str] = {}  # other files every worktree gets, by path: the stage times
        if self.carried and store is None:
            raise ValueError("carried outputs need a store")
        if store is not None:
            shutil.rmtree(store, ignore_errors=True)

    def take(self, lockfile: Path, stage: str) -> None:
        from dvc.utils.serialize import load_yaml

        stages = (load_yaml(lockfile) or {}).get("stages", {}) if lockfile.is_file() else {}
        if stage not in stages:
            raise FanoutError(f"{lockfile} has no entry for {stage} after it ran")
        for path in self.carried.get(stage, []):
            made = lockfile.parent / path
            if not made.exists():
                raise FanoutError(f"{stage} ran but its output {path} is not in {lockfile.parent}")
            copy_path(made, self.store / path)  # type: ignore[operator]
            self.outputs.append(path)
        self.entries[stage] = stages[stage]

    def write_into(self, lockfile: Path) -> None:
        from dvc.utils.serialize import modify_yaml

        for path in self.outputs:
            copy_path(self.store / path, lockfile.parent / path)  # type: ignore[operator]
        for path, text in self.files.items():
            write_file(lockfile.parent / path, text)
        if not self.entries:
            return
        with modify_yaml(lockfile) as data:
            if not data:
                data.update({"schema": "2.0"})
            data["stages"] = data.get("stages", {})
            data["stages"].update(self.entries)


class StageTimes:
    """The runner's record of the stages' wall-clock times (:mod:`reml.core.stagetimes`): the workspace's
    file, less the entries whose outputs the workspace's dvc.lock contradicts (the stage ran since, not
    under the runner) or whose stage is gone, plus one entry per stage DVC ran in a worker. It is written
    into the workspace after each stage (an interrupted run keeps what it measured) and, through the
    LockBook, into each worktree, so that the stage reading it (the report) finds the workspace's bytes."""

    def __init__(self, root: Path, the_plan: Plan, jobs: int, lock: LockBook) -> None:
        from dvc.utils.serialize import load_yaml

        self.root, self.path, self.jobs, self.lock = root, the_plan.times, jobs, lock
        self.untimed = set(the_plan.timed_by)
        self.entries: dict[str, dict] = {}
        if self.path is None:
            return
        lockfile = root / "dvc.lock"
        locked = (load_yaml(lockfile) or {}).get("stages", {}) if lockfile.is_file() else {}
        for name, entry in stagetimes.load(root / self.path).items():
            # not in dvc.lock: timed by a run stopped before its end, whose stages the next run restores
            if name in the_plan.stages and (name not in locked or outputs(locked[name]) == entry["outs"]):
                self.entries[name] = entry
        self.write()

    def record(self, stage: str, seconds: float, log: str, entry: dict) -> None:
        if self.path is None or stage in self.untimed or not stagetimes.ran(log, stage):
            return  # restored from the run-cache or unchanged: its earlier time stands
        from datetime import UTC, datetime

        finished = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.entries[stage] = {"seconds": round(seconds, 1), "jobs": self.jobs, "machine": stagetimes.machine(),
                               "finished": finished, "outs": outputs(entry)}  # fmt: skip
        self.write()

    def write(self) -> None:
        if self.path is None:
            return
        text = stagetimes.render(self.entries)
        self.lock.files[self.path] = text
        if not (self.root / self.path).is_file() or (self.root / self.path).read_text() != text:
            write_file(self.root / self.path, text)


def outputs(entry: dict) -> dict[str, str]:
    """A dvc.lock entry's outputs as {path: md5}: what identifies the run it records."""
    return {o["path"]: o.get("md5", "") for o in entry.get("outs", [])}


def write_file(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file, so that a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def ignore_outputs(root: Path, paths: Sequence[str]) -> None:
    """Add ``paths`` to their folders' .gitignore with DVC's own code, as ``dvc repro`` does for a cached
    output it writes, and does not do for a carried stage it finds unchanged: without this a new cached
    output of such a stage would be left for ``git add``."""
    if not paths:
        return
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        for path in paths:
            repo.scm_context.ignore(str(root / path))


def copy_path(source: Path, target: Path) -> None:
    """``target`` becomes an exact copy of the file or directory ``source`` (no stale files left in it)."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target, follow_symlinks=False)


# --------------------------------------------------------------------------- executors


class Local:
    """``jobs`` worktrees sharing this workspace's DVC cache, one stage at a time each."""

    def __init__(self, root: Path, jobs: int) -> None:
        cache = subprocess.run([DVC, "cache", "dir"], cwd=root, capture_output=True, text=True, check=True)
        self.root, self.cache, self.jobs = root, cache.stdout.strip(), jobs
        self.free = [make_worktree(root, root / FANOUT_DIR / f"worker-{i}", self.cache) for i in range(jobs)]
        for worktree in self.free:  # stages already up to date here are up to date there
            subprocess.run([DVC, "checkout", "--allow-missing", "--quiet"], cwd=worktree, capture_output=True,
                           env=environment(worktree))  # fmt: skip
        self.pool = ThreadPoolExecutor(jobs)
        self.busy: dict[Future, Path] = {}

    def submit(self, stage: str, log: Path, lock: LockBook) -> Future:
        worktree = self.free.pop()
        lock.write_into(worktree / "dvc.lock")  # the worktree is idle: no dvc runs there now
        future = self.pool.submit(run_in_worktree, str(worktree), stage, str(log), False)
        self.busy[future] = worktree
        return future

    def done(self, future: Future) -> Path:
        worktree = self.busy.pop(future)
        self.free.append(worktree)
        return worktree

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class Submitit:
    """One submitit job per stage, each in its own worktree and cache, results through the default
    DVC remote (``dvc remote add -d NAME URL``: a shared directory, SSH, S3...).

    ``cluster="local"`` runs the jobs as processes of this machine (submitit's LocalExecutor: the
    tested path); ``"slurm"`` submits them with sbatch, ``None`` lets submitit choose (Slurm when
    ``sbatch`` exists). On Slurm the worktrees are created under ``.dvc/tmp/fanout/`` of this
    repository, which must be on a filesystem the nodes see (the code and params travel that way);
    the data goes through the remote.
    """

    def __init__(self, root: Path, jobs: int, cluster: str | None, slurm: dict[str, object]) -> None:
        import submitit

        self.root, self.jobs, self.count = root, jobs, 0
        folder = str(root / FANOUT_DIR / "submitit")
        if cluster is None:
            cluster = "slurm" if shutil.which("sbatch") else "local"
        self.executor = submitit.SlurmExecutor(folder) if cluster == "slurm" else submitit.LocalExecutor(folder)
        if slurm:
            self.executor.update_parameters(**slurm)
        self.running: list = []
        self.worktrees: dict[Future, Path] = {}

    def submit(self, stage: str, log: Path, lock: LockBook) -> Future:
        self.count += 1
        worktree = make_worktree(self.root, self.root / FANOUT_DIR / f"job-{self.count}", None)
        lock.write_into(worktree / "dvc.lock")
        job = self.executor.submit(run_in_worktree, str(worktree), stage, str(log), True)
        future: Future = Future()
        self.running.append((job, future))
        self.worktrees[future] = worktree
        return future

    def poll(self) -> None:
        for job, future in list(self.running):
            if job.done():
                self.running.remove((job, future))
                try:
                    future.set_result(job.result())
                except Exception as err:  # submitit re-raises the job's exception (a FanoutError)
                    future.set_exception(err)

    def done(self, future: Future) -> Path:
        return self.worktrees.pop(future)

    def close(self) -> None:
        for job, _ in self.running:
            job.cancel(check=False)


# --------------------------------------------------------------------------- the scheduler


def fan_out(the_plan: Plan, executor, jobs: int, logs: Path, say: Callable[[str], None] = print,
            root: Path | None = None) -> LockBook:  # fmt: skip
    """Run the plan's stages, at most ``jobs`` at once, each when its upstream stages are done, the
    longest chain of recorded times first (:meth:`Plan.priority`); returns their dvc.lock entries. With
    ``root`` (the workspace) the time of each stage DVC ran is recorded there (:class:`StageTimes`). The
    first failure stops new submissions, waits for the running ones, and raises; an interrupt (Ctrl-C)
    kills the running stages."""
    lock = LockBook(the_plan.carried, logs.parent / "carried" if the_plan.carried else None)
    times = StageTimes(root, the_plan, jobs, lock) if root is not None else None
    priority = the_plan.priority()
    waiting = {name: set(up) for name, up in the_plan.upstream.items()}
    index = {name: i for i, name in enumerate(the_plan.order)}
    ready: list[tuple[float, int, int, str]] = []
    running: dict[Future, tuple[str, float, Path]] = {}
    finished = 0
    total = len(the_plan.order)
    logs.mkdir(parents=True, exist_ok=True)

    def release() -> None:
        for name in [n for n, up in waiting.items() if not up]:
            del waiting[name]
            chain, count = priority[name]
            heapq.heappush(ready, (-chain, -count, index[name], name))

    release()
    failure: BaseException | None = None
    try:
        while ready or running:
            while ready and len(running) < jobs and failure is None:
                *_, name = heapq.heappop(ready)
                log = logs / f"{name.replace('@', '_')}.log"
                log.write_text("")
                running[executor.submit(name, log, lock)] = (name, time.perf_counter(), log)
                say(f"[{finished}/{total}] started {name}")
            if not running:
                break
            if hasattr(executor, "poll"):
                executor.poll()
                done = {f for f in running if f.done()}
                if not done:
                    time.sleep(0.5)
                    continue
            else:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                name, start, log = running.pop(future)
                worktree = executor.done(future)
                if future.exception() is None:
                    try:
                        lock.take(worktree / "dvc.lock", name)
                    except FanoutError as err:
                        future = Future()
                        future.set_exception(err)
                if future.exception() is not None:
                    failure = failure or future.exception()
                    say(f"[{finished}/{total}] FAILED {name} after {time.perf_counter() - start:.0f} s")
                    continue
                finished += 1
                seconds = time.perf_counter() - start
                if times is not None:
                    times.record(name, seconds, log.read_text(errors="replace"), lock.entries[name])
                say(f"[{finished}/{total}] done {name} in {seconds:.0f} s")
                for up in waiting.values():
                    up.discard(name)
            if failure is None:
                release()
    except BaseException:
        kill_children()
        raise
    finally:
        executor.close()
    if failure is not None:
        raise failure
    return lock


def repro(root: Path, targets: Sequence[str], jobs: int, executor_factory, pull: bool, say=print) -> None:
    """The whole run: fan out, then ``dvc repro`` here (restores each finished stage from the cache by
    its entry, runs the tail)."""
    start = time.perf_counter()
    the_plan = plan(root, targets, carry=not pull)  # a cluster's jobs share no files: nothing is carried
    here = ", ".join(the_plan.tail)
    say(f"{len(the_plan.order)} stages fan out over {jobs} workers ({len(the_plan.carried)} of them with "
        f"git-tracked outputs, copied back); then dvc repro here, which restores them and runs the rest "
        f"({here or 'none'})")  # fmt: skip
    if the_plan.order:
        lock = fan_out(the_plan, executor_factory(), jobs, root / FANOUT_DIR / "logs", say, root)
        if pull:
            pull_outputs(root, lock.entries)
        lock.write_into(root / "dvc.lock")
    say(f"fan-out done in {time.perf_counter() - start:.0f} s; dvc repro in {root}")
    args = [DVC, "repro", *targets]  # on a cluster, pull_outputs fetched what it restores
    code = subprocess.run(args, cwd=root, env=environment(root)).returncode
    if code != 0:
        raise FanoutError(f"{' '.join(args)} failed (exit {code})")
    ignore_outputs(root, the_plan.ignored)
    say(f"done in {time.perf_counter() - start:.0f} s")


def cleanup(root: Path) -> None:
    """Remove the worktrees (their caches on a cluster) once the run succeeded."""
    for path in sorted((root / FANOUT_DIR).glob("*-*")):
        if path.is_dir() and (path / ".git").exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=root, capture_output=True)
    shutil.rmtree(root / FANOUT_DIR / "carried", ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)


def stop_like_ctrl_c() -> None:
    """SIGTERM (a scheduler's or ``kill``'s) and SIGINT, which a shell ignores in background jobs, both
    raise KeyboardInterrupt here, so the running stages are killed (:func:`fan_out`) and not left behind."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reml repro", description=__doc__.split("\n\n")[0])
    p.add_argument("targets", nargs="*", help="stages (default: the whole pipeline), as for dvc repro")
    p.add_argument("-j", "--jobs", type=int, default=2, help="stages at once (default: 2)")
    p.add_argument("--cluster", choices=["local", "slurm", "auto"],
                   help="submit each stage as a submitit job (local: processes of this machine; auto: Slurm "
                        "if sbatch exists) exchanging results through the default DVC remote")  # fmt: skip
    p.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="a SlurmExecutor parameter, e.g. partition=gpu, time=240, gpus_per_node=1")  # fmt: skip
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs must be >= 1, got {args.jobs}")
    root = Path(git("rev-parse", "--show-toplevel", cwd=Path.cwd()).strip())
    if args.cluster:
        from reml.core.compute import load as load_compute
        from reml.core.config import ConfigError

        try:
            device = load_compute(root / "params.yaml").device
        except ConfigError as err:
            p.error(str(err))
        if device == "auto":
            p.error("compute.device: auto resolves per machine, and DVC's caches cannot tell a CPU run from a GPU "
                    "run; on a cluster set cpu or cuda")  # fmt: skip
        remote = subprocess.run([DVC, "remote", "default"], cwd=root, capture_output=True, text=True)
        if remote.returncode != 0 or not remote.stdout.strip():
            p.error("--cluster exchanges results through the default DVC remote and there is none: "
                    "dvc remote add -d NAME URL (a shared directory, ssh://, s3://; docs/compute.md)")  # fmt: skip
    if args.cluster:
        slurm = {}
        for item in args.slurm:
            key, sep, value = item.partition("=")
            if not sep:
                p.error(f"--slurm {item!r}: expected KEY=VALUE")
            slurm[key] = int(value) if value.isdigit() else value
        cluster = None if args.cluster == "auto" else args.cluster

        def factory():
            return Submitit(root, args.jobs, cluster, slurm)
    else:

        def factory():
            return Local(root, args.jobs)

    stop_like_ctrl_c()
    try:
        repro(root, args.targets, args.jobs, factory, pull=bool(args.cluster))
    except FanoutError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    cleanup(root)
    return 0
