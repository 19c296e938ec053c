"""iMAML against second-order MAML at 1, 5 and 10 inner steps: time and memory of one meta-gradient
(the reason iMAML exists: its memory does not grow with the inner steps). Run with `make bench`.

Time: pytest-benchmark of one meta-gradient on the sinusoid setting (1-40-40-1, meta-batch 25, K = 10,
1 torch thread). Memory: the peak resident memory a fresh process adds while computing one meta-gradient
on a wider net (1-400-400-1), where the graphs are large enough to stand out of the interpreter's own
memory; measured in a subprocess each (``ru_maxrss`` is a high-water mark).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reml.core.harness import mse
from reml.core.nets import MLP
from reml.core.seeding import generator
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.imaml import ImamlConfig, imaml_meta_gradient
from reml.methods.maml import maml_meta_gradient

STEPS = (1, 5, 10)
REPO = Path(__file__).resolve().parents[1]
# glibc raises its mmap threshold after each large free, so freed tensors stay in the heap and the high-water
# mark would measure fragmentation; a fixed threshold maps every tensor of 128 KiB and more and unmaps it when
# freed, so the peak is the memory that was live at once
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def _cfg(steps: int) -> ImamlConfig:
    return ImamlConfig(seed=0, iterations=1, meta_batch=25, inner_lr=0.01, inner_steps=steps, lam=10.0, cg_iters=5,
                       meta_lr=1e-3)  # fmt: skip


def _meta_gradient(method: str, steps: int, width: int):
    model = MLP((1, width, width, 1))
    params = model.init(generator(0, "bench"))
    batch = SinusoidDistribution().sample(25, 10, 10, generator(0, "bench-tasks"))
    if method == "maml":
        return lambda: maml_meta_gradient(model, params, batch, 0.01, steps, False, mse)
    return lambda: imaml_meta_gradient(model, params, batch, _cfg(steps), mse)


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("method", ["maml", "imaml"])
def test_meta_gradient_time(benchmark, method, steps):
    torch.set_num_threads(1)
    benchmark.group = f"meta-gradient, {steps} inner step(s), 1-40-40-1, 1 thread"
    benchmark.pedantic(_meta_gradient(method, steps, 40), rounds=20, iterations=1, warmup_rounds=2)


_PEAK = """
import json, resource, sys, torch
from benchmarks.test_imaml_memory import _meta_gradient
torch.set_num_threads(1)
method, steps = sys.argv[1], int(sys.argv[2])
fn = _meta_gradient(method, 1, 400)
fn()  # warm up the allocator and the code paths at one step
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_meta_gradient(method, steps, 400)()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "after_kib": after}))
"""


def _peak_mib(method: str, steps: int) -> float:
    """Peak memory (MiB) one meta-gradient at ``steps`` adds over the same method at one step, warm."""
    out = subprocess.run([sys.executable, "-c", _PEAK, method, str(steps)], capture_output=True, text=True,
                         check=True, cwd=REPO, env=os.environ | FIXED_MMAP).stdout  # fmt: skip
    rss = json.loads(out.strip().splitlines()[-1])
    return (rss["after_kib"] - rss["before_kib"]) / 1024


def test_imaml_memory_does_not_grow_with_inner_steps_and_maml_s_does(benchmark):
    """The target: from 5 to 10 inner steps iMAML's peak memory moves by less than 5 MiB (its inner loop holds
    one more copy of the weights than at one step, then no more), while MAML's grows by half or more, and at
    10 steps MAML needs over 10x iMAML's extra memory (1-400-400-1, meta-batch 25, K = 10)."""
    benchmark.group = "peak memory over one step, 1-400-400-1"
    peaks = {(m, s): _peak_mib(m, s) for m in ("maml", "imaml") for s in STEPS}
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info["extra_peak_mib"] = {f"{m}@{s}": round(v, 1) for (m, s), v in peaks.items()}
    print("\nextra peak memory over one inner step (MiB): "
          + ", ".join(f"{m} {s} steps {v:.1f}" for (m, s), v in peaks.items()))  # fmt: skip
    assert abs(peaks[("imaml", 10)] - peaks[("imaml", 5)]) < 5, peaks
    assert peaks[("maml", 10)] > 1.5 * peaks[("maml", 5)] and peaks[("maml", 10)] > 10 * peaks[("imaml", 10)], peaks
