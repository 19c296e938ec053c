"""`make gpu-check`: does the CUDA path give the CPU's numbers, and how much faster is it?

1. Timings on every device this machine has (the CPU always, CUDA when torch sees a GPU), median of a
   few repetitions after a warm-up, with the GPU synchronised around each one:
   - one MAML meta-iteration on sinusoids, Finn's settings (meta-batch 25, K = 10, one inner step,
     second order, 1-40-40-1, Adam);
   - one conv MAML meta-iteration, Finn's Omniglot settings (5-way 1-shot, 15 query images per class,
     meta-batch 32, 64 filters, 28 x 28, one inner step, second order), both meta-gradients;
   - one MAML-TRPO meta-update on navigation2d, Finn's batch (20 tasks x 20 episodes of 100 steps):
     the inner step, the meta-objective and the TRPO step, on rollouts sampled beforehand (sampling is
     CPU work on every device).
2. On CUDA only: the tiny profile, `dvc repro` in two copies of this repository, `compute.device` cpu
   and cuda, and every score compared. Float32 on two devices rounds differently, and training turns
   rounding into other trajectories, so the check is a tolerance, not equality: the methods without a
   learned policy (sinusoid and classification baselines and meta-learners) must agree within
   ``--rtol`` relative (default 5%) on every score; REML and meta-RL, whose PPO or TRPO trajectories
   diverge on any rounding difference, are listed with their largest difference, not judged.

Without a GPU it times the CPU, says so and exits 1: the CUDA path has then not been checked.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

import reml  # noqa: F401  (pins the CPU code paths before any torch operator)
from reml.core.compute import configure, describe
from reml.core.config import ComputeConfig
from reml.core.harness import mse
from reml.core.nets import MLP, on_device
from reml.core.seeding import generator
from reml.families.classification.nets import ConvNet, cross_entropy
from reml.families.classification.tasks import ClassPool, EpisodeDistribution
from reml.families.rl import rl_family
from reml.families.rl.maml_trpo import MamlTrpoSettings, meta_objectives
from reml.families.rl.pg import TaskBatch, reinforce_step
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.sampler import Sampler
from reml.families.rl.trpo import trpo_step
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.config import MamlConfig
from reml.methods.maml import Maml, maml_meta_gradient, maml_meta_gradient_loop

REPO = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], object], device: torch.device, rounds: int) -> float:
    """Median seconds of ``fn`` over ``rounds`` runs after one warm-up."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()
    times = []
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sinusoid_maml(device: torch.device) -> Callable[[], object]:
    model = MLP((1, 40, 40, 1))
    batch = SinusoidDistribution().sample(25, 10, 10, generator(0, "gpu-check")).to(device)
    cfg = MamlConfig(seed=0, iterations=1, meta_batch=25, inner_lr=0.01, inner_steps=1, meta_lr=1e-3,
                     first_order=False)  # fmt: skip
    learner = Maml(model, on_device(model.init(generator(0, "gpu-check")), device), cfg, mse)
    return lambda: learner.step(batch, 1)


def conv_maml(device: torch.device, meta_gradient) -> Callable[[], object]:
    model = ConvNet(1, 64, 5, 28)
    images = torch.rand(40, 20, 1, 28, 28, generator=generator(0, "gpu-check"))
    pool = ClassPool(images, tuple(map(str, range(40))))
    batch = EpisodeDistribution(pool, 5).sample(32, 1, 15, generator(1, "gpu-check")).to(device)
    cfg = MamlConfig(seed=0, iterations=1, meta_batch=32, inner_lr=0.4, inner_steps=1, meta_lr=1e-3,
                     first_order=False)  # fmt: skip
    init = on_device(model.init(generator(2, "gpu-check")), device)
    learner = Maml(model, init, cfg, cross_entropy, meta_gradient)
    return lambda: learner.step(batch, 1)


def maml_trpo_update(device: torch.device) -> Callable[[], object]:
    family = rl_family("navigation2d")
    settings = MamlTrpoSettings(iterations=1, meta_batch=20, rollouts=20, inner_lr=0.1)
    tasks = family.sample_tasks(settings.meta_batch, 0, stream="gpu-check")
    with Sampler(family, settings.meta_batch * settings.rollouts, workers=1) as sampler:
        policy = GaussianPolicy(sampler.obs_dim, sampler.act_dim)
        params = policy.init(generator(0, "gpu-check"))
        rng = generator(0, "gpu-check/rollouts")
        before = sampler.sample(policy, params, tasks, settings.rollouts, rng)
        adapted = reinforce_step(policy, params, TaskBatch.of(before, settings.gamma), settings.inner_lr)
        after = sampler.sample(policy, {k: v.detach() for k, v in adapted.items()}, tasks, settings.rollouts, rng,
                               per_task=True)  # fmt: skip
    params, before, after = on_device(params, device), before.to(device), after.to(device)

    def update():
        train = TaskBatch.of(before, settings.gamma)
        inner = {k: v.detach() for k, v in reinforce_step(policy, params, train, settings.inner_lr).items()}
        objectives = meta_objectives(policy, train, TaskBatch.of(after, settings.gamma), inner, settings)
        return trpo_step(params, objectives, settings.max_kl, settings.cg_damping, settings.cg_iters,
                         settings.ls_steps, settings.ls_ratio)  # fmt: skip

    return update


def timings(devices: list[torch.device]) -> list[tuple[str, dict[str, float]]]:
    cases = [
        ("sinusoid MAML meta-iteration (Finn: meta-batch 25, K = 10)", lambda d: sinusoid_maml(d), 20),
        ("conv MAML meta-iteration, vmapped (Finn: 5-way 1-shot, meta-batch 32, 64 filters)",
         lambda d: conv_maml(d, maml_meta_gradient), 3),
        ("conv MAML meta-iteration, per-task loop (the same)", lambda d: conv_maml(d, maml_meta_gradient_loop), 3),
        ("MAML-TRPO meta-update, navigation2d (Finn: 20 tasks x 20 episodes)", lambda d: maml_trpo_update(d), 3),
    ]  # fmt: skip
    rows = []
    for name, make, rounds in cases:
        rows.append((name, {d.type: timed(make(d), d, rounds) for d in devices}))
        cells = ", ".join(f"{dev} {sec * 1000:.1f} ms" for dev, sec in rows[-1][1].items())
        print(f"  {name}: {cells}", flush=True)
    return rows


def tiny_run(device: str, where: Path) -> dict:
    """The tiny profile in a copy of this repository, on ``device``; its scores, by family."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")  # fmt: skip
    for name in filter(None, files):
        if (REPO / name).is_file():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            (where / name).write_bytes((REPO / name).read_bytes())
    env = {**os.environ, "PYTHONPATH": str(where)}
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "reml", "profile", "tiny"]):
        subprocess.run(cmd, cwd=where, check=True, capture_output=True, env=env)
    params = yaml.safe_load((where / "params.yaml").read_text())
    params["compute"]["device"] = device
    (where / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    print(f"  dvc repro, tiny profile, compute.device {device} ...", flush=True)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "-q"], cwd=where, check=True, env=env)
    scores = where / "reports" / "tiny" / "scores"
    return {p.stem: json.loads(p.read_text()) for p in sorted(scores.glob("*.json"))}


def leaves(tree, path=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, (*path, key))
    elif isinstance(tree, int | float) or tree is None:
        yield path, tree


def compare(cpu: dict, cuda: dict, rtol: float) -> bool:
    """Every score of the two runs; False if a judged one (no ``reml*`` method, not meta-RL) differs by
    more than ``rtol`` relative, or diverged on one device only."""
    ok, worst = True, {}
    for name in cpu:
        other = dict(leaves(cuda.get(name, {})))
        for path, a in leaves(cpu[name]):
            b = other.get(path)
            judged = name != "rl" and not any(str(part).startswith("reml") for part in path)
            group = f"{name}: {'methods without a learned policy' if judged else 'REML and meta-RL (not judged)'}"
            where = f"{name} {'/'.join(map(str, path))}"
            if a is None or b is None:
                if (a is None) != (b is None):
                    print(f"  {where}: cpu {a}, cuda {b} (diverged on one device only)")
                    ok = ok and not judged
                continue
            rel = abs(a - b) / max(abs(a), 1e-12)
            worst[group] = max(worst.get(group, 0.0), rel)
            if judged and rel > rtol:
                print(f"  {where}: cpu {a:.6g}, cuda {b:.6g} ({rel:.1%})")
                ok = False
    for group, rel in sorted(worst.items()):
        print(f"  largest relative difference, {group}: {rel:.2%}")
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rtol", type=float, default=0.05, help="relative tolerance for judged scores (default 0.05)")
    p.add_argument("--skip-tiny", action="store_true", help="timings only")
    args = p.parse_args()
    has_cuda = torch.cuda.is_available()
    configure(ComputeConfig("cuda" if has_cuda else "cpu", 1))  # what a stage does: 1 thread, CUDA pinned
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if has_cuda else [])
    for device in devices:
        print(f"device: {describe(device, 1)}")
    print("timings (median):")
    timings(devices)
    if not has_cuda:
        print("no CUDA device (torch.cuda.is_available() is False, torch "
              f"{torch.__version__}, CUDA build: {torch.version.cuda}): the CUDA path was NOT checked")  # fmt: skip
        return 1
    if args.skip_tiny:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        cpu = tiny_run("cpu", Path(tmp) / "cpu")
        cuda = tiny_run("cuda", Path(tmp) / "cuda")
    ok = compare(cpu, cuda, args.rtol)
    print("tiny profile, cuda against cpu:", "within tolerance" if ok else f"DIFFERENT beyond {args.rtol:.0%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
