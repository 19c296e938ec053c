"""``dvc repro`` with the independent stages of the DAG run N at a time, locally or on a cluster.

Built on DVC's own machinery, not around it (docs/compute.md):

1. Each worker is a git worktree of this repository (under ``.dvc/tmp/fanout/``) holding the
   workspace's uncommitted changes, so it runs exactly the code and params of the workspace.
2. A stage runs in a worker as ``dvc repro <stage>``: the stages upstream of it, already run by some
   worker, are restored from DVC's run-cache ("Stage is cached - skipping run"), not run again.
   Locally the workers share this workspace's cache (``cache.dir``); on a cluster each job has its
   own cache and they exchange results through the default DVC remote (``dvc repro --pull`` before,
   ``dvc push --run-cache`` after).
3. When every fanned-out stage is done, ``dvc repro`` in this workspace restores each of them from
   the run-cache and runs what is left. So dvc.lock is written by DVC, exactly as a serial run
   writes it, and a following ``dvc repro`` runs nothing.

DVC's run-cache keeps only stages whose outputs are all cached, metrics or plots; a stage with other
git-tracked outputs (``cache: false``: the scores, curves, figures and report under ``reports/``) is
not fanned out but runs in step 3, in this workspace, which is where committed results must be
written. A failed or killed worker leaves this workspace untouched: DVC records a run in the
run-cache only after it succeeded, and step 3 does not start.

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

FANOUT_DIR = Path(".dvc/tmp/fanout")  # git-ignored by DVC's own .dvc/.gitignore


class FanoutError(RuntimeError):
    """A worker failed: the message names the stage and its log."""


# --------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """The stages to fan out, each with the fanned-out stages it depends on, in dvc.yaml order."""

    upstream: dict[str, set[str]]
    order: list[str]
    tail: list[str]  # stages of the targets that run in this workspace afterwards (not run-cacheable)
    targets: list[str] = field(default_factory=list)

    def priority(self) -> dict[str, int]:
        """How many fanned-out stages wait on each stage, directly or not: those start first."""
        below = {name: {n for n, up in self.upstream.items() if name in up} for name in self.order}
        count = {}
        for name in self.order:
            seen, todo = set(), list(below[name])
            while todo:
                n = todo.pop()
                if n not in seen:
                    seen.add(n)
                    todo.extend(below[n])
            count[name] = len(seen)
        return count


def run_cacheable(stage) -> bool:
    """DVC's own rule (dvc/stage/__init__.py, ``Stage.run``): a run is kept in the run-cache unless the
    stage has an uncached output that is neither a metric nor a plot (and it has a command, deps and
    outputs, none of them persistent)."""
    if not (stage.cmd and stage.deps and stage.outs) or stage.always_changed:
        return False
    if any(out.persist for out in stage.outs):
        return False
    return all(out.use_cache or out.is_metric or out.is_plot for out in stage.outs)


def plan(root: str | Path, targets: Sequence[str] = ()) -> Plan:
    """The stages of ``targets`` (every stage when empty) and their upstream, split into those a worker
    can run (run-cacheable, with every upstream stage run-cacheable) and the tail."""
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
        fan = {s for s in order if run_cacheable(s) and all(run_cacheable(u) for u in nx.descendants(graph, s))}
        upstream = {s.addressing: {u.addressing for u in graph.successors(s) if u in fan} for s in order if s in fan}
        return Plan(
            upstream=upstream,
            order=[s.addressing for s in order if s in fan],
            tail=[s.addressing for s in order if s not in fan],
            targets=list(targets),
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
    diff = subprocess.run(["git", "diff", "--binary", "HEAD"], cwd=root, capture_output=True, check=True).stdout
    if diff:
        applied = subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=path, input=diff, capture_output=True)
        if applied.returncode != 0:
            raise FanoutError(f"could not copy the workspace's changes to {path}: {applied.stderr.decode().strip()}")
    for name in git("ls-files", "--others", "--exclude-standard", "-z", cwd=root).split("\0"):
        if name:
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, path / name)
    local = root / ".dvc" / "config.local"
    if local.is_file():
        shutil.copy2(local, path / ".dvc" / "config.local")
    if cache_dir:
        dvc("config", "--local", "cache.dir", cache_dir, cwd=path)
    return path


def dvc(*args: str, cwd: str | Path, log: Path | None = None) -> None:
    """Run ``dvc *args`` in ``cwd`` (output appended to ``log``); FanoutError on failure."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # the worktree's own reml, not the editable install's
    if log is None:
        done = subprocess.run(["dvc", *args], cwd=cwd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise FanoutError(f"dvc {' '.join(args)} in {cwd}: {done.stderr.strip() or done.stdout.strip()}")
        return
    with log.open("a") as out:
        out.write(f"$ dvc {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen(["dvc", *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
        try:
            code = proc.wait()
        except BaseException:  # Ctrl-C or a failing sibling: stop the stage's whole process group
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
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


# --------------------------------------------------------------------------- executors


class Local:
    """``jobs`` worktrees sharing this workspace's DVC cache, one stage at a time each."""

    def __init__(self, root: Path, jobs: int) -> None:
        cache = subprocess.run(["dvc", "cache", "dir"], cwd=root, capture_output=True, text=True, check=True)
        self.root, self.cache, self.jobs = root, cache.stdout.strip(), jobs
        self.free = [make_worktree(root, root / FANOUT_DIR / f"worker-{i}", self.cache) for i in range(jobs)]
        for worktree in self.free:  # stages already up to date here are up to date there
            subprocess.run(["dvc", "checkout", "--allow-missing", "--quiet"], cwd=worktree, capture_output=True)
        self.pool = ThreadPoolExecutor(jobs)
        self.busy: dict[Future, Path] = {}

    def submit(self, stage: str, log: Path) -> Future:
        worktree = self.free.pop()
        future = self.pool.submit(run_in_worktree, str(worktree), stage, str(log), False)
        self.busy[future] = worktree
        return future

    def done(self, future: Future) -> None:
        self.free.append(self.busy.pop(future))

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

    def submit(self, stage: str, log: Path) -> Future:
        self.count += 1
        worktree = make_worktree(self.root, self.root / FANOUT_DIR / f"job-{self.count}", None)
        job = self.executor.submit(run_in_worktree, str(worktree), stage, str(log), True)
        future: Future = Future()
        self.running.append((job, future))
        return future

    def poll(self) -> None:
        for job, future in list(self.running):
            if job.done():
                self.running.remove((job, future))
                try:
                    future.set_result(job.result())
                except Exception as err:  # submitit re-raises the job's exception (a FanoutError)
                    future.set_exception(err)

    def done(self, future: Future) -> None:
        pass

    def close(self) -> None:
        for job, _ in self.running:
            job.cancel(check=False)


# --------------------------------------------------------------------------- the scheduler


def fan_out(the_plan: Plan, executor, jobs: int, logs: Path, say: Callable[[str], None] = print) -> None:
    """Run the plan's stages, at most ``jobs`` at once, each when its upstream stages are done, longest
    chains first. The first failure stops new submissions, waits for the running ones, and raises."""
    priority = the_plan.priority()
    waiting = {name: set(up) for name, up in the_plan.upstream.items()}
    index = {name: i for i, name in enumerate(the_plan.order)}
    ready: list[tuple[int, int, str]] = []
    running: dict[Future, tuple[str, float]] = {}
    finished = 0
    total = len(the_plan.order)
    logs.mkdir(parents=True, exist_ok=True)

    def release() -> None:
        for name in [n for n, up in waiting.items() if not up]:
            del waiting[name]
            heapq.heappush(ready, (-priority[name], index[name], name))

    release()
    failure: BaseException | None = None
    try:
        while ready or running:
            while ready and len(running) < jobs and failure is None:
                _, _, name = heapq.heappop(ready)
                log = logs / f"{name.replace('@', '_')}.log"
                log.write_text("")
                running[executor.submit(name, log)] = (name, time.perf_counter())
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
                name, start = running.pop(future)
                executor.done(future)
                if future.exception() is not None:
                    failure = failure or future.exception()
                    say(f"[{finished}/{total}] FAILED {name} after {time.perf_counter() - start:.0f} s")
                    continue
                finished += 1
                say(f"[{finished}/{total}] done {name} in {time.perf_counter() - start:.0f} s")
                for up in waiting.values():
                    up.discard(name)
            if failure is None:
                release()
    finally:
        executor.close()
    if failure is not None:
        raise failure


def repro(root: Path, targets: Sequence[str], jobs: int, executor_factory, pull: bool, say=print) -> None:
    """The whole run: fan out, then ``dvc repro`` here (restores from the run-cache, runs the tail)."""
    start = time.perf_counter()
    the_plan = plan(root, targets)
    here = ", ".join(the_plan.tail) or "none"
    say(f"{len(the_plan.order)} stages fan out over {jobs} workers; then dvc repro here, where the stages with "
        f"git-tracked outputs run ({here})")  # fmt: skip
    if the_plan.order:
        fan_out(the_plan, executor_factory(), jobs, root / FANOUT_DIR / "logs", say)
    say(f"fan-out done in {time.perf_counter() - start:.0f} s; dvc repro in {root}")
    args = ["dvc", "repro", *(["--pull"] if pull else []), *targets]
    code = subprocess.run(args, cwd=root).returncode
    if code != 0:
        raise FanoutError(f"{' '.join(args)} failed (exit {code})")
    say(f"done in {time.perf_counter() - start:.0f} s")


def cleanup(root: Path) -> None:
    """Remove the worktrees (their caches on a cluster) once the run succeeded."""
    for path in sorted((root / FANOUT_DIR).glob("*-*")):
        if path.is_dir() and (path / ".git").exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=root, capture_output=True)
    subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)


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
        remote = subprocess.run(["dvc", "remote", "default"], cwd=root, capture_output=True, text=True)
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

    try:
        repro(root, args.targets, args.jobs, factory, pull=bool(args.cluster))
    except FanoutError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    cleanup(root)
    return 0
