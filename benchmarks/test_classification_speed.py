"""Few-shot classification speed: one conv MAML meta-iteration (5-way 1-shot, 5 query images per class,
meta-batch 8, one inner step, second order), vmapped with torch.func against the per-task loop with
torch.autograd, for 16 (the quick profile), 32 and 64 filters (Finn's Omniglot net), 1 thread; and the
time to render the whole default glyph set. Run with `make bench`.

No speed-up target is asserted for the conv net: on CPU, vmap turns per-task conv weights into a
grouped convolution, which is slower than the loop's plain convolutions at 32 filters and above
(numbers in docs/benchmarks.md). The glyph set must render in under two minutes (its budget in the pipeline).
"""

import math
import time

import pytest
import torch

from reml.core.seeding import generator
from reml.families.classification import config
from reml.families.classification.glyphs import generate
from reml.families.classification.nets import ConvNet, cross_entropy
from reml.families.classification.tasks import ClassPool, EpisodeDistribution
from reml.methods.config import MamlConfig
from reml.methods.maml import Maml, maml_meta_gradient, maml_meta_gradient_loop

IMPLEMENTATIONS = {"vmapped": maml_meta_gradient, "loop": maml_meta_gradient_loop}


@pytest.mark.parametrize("filters", [16, 32, 64])
@pytest.mark.parametrize("implementation", ["vmapped", "loop"])
def test_conv_maml_meta_iteration(benchmark, implementation, filters):
    torch.set_num_threads(1)
    benchmark.group = f"conv MAML meta-iteration, 5-way 1-shot, meta-batch 8, {filters} filters, 1 thread"
    model = ConvNet(1, filters, 5, 28)
    pool = ClassPool(torch.rand(20, 10, 1, 28, 28, generator=generator(0, "bench-images")), tuple(map(str, range(20))))
    batch = EpisodeDistribution(pool, 5).sample(8, 1, 5, generator(0, "bench-tasks"))
    cfg = MamlConfig(seed=0, iterations=1, meta_batch=len(batch), inner_lr=0.4, inner_steps=1, meta_lr=1e-3,
                     first_order=False)  # fmt: skip
    learner = Maml(model, model.init(generator(0, "bench")), cfg, cross_entropy, IMPLEMENTATIONS[implementation])
    loss = benchmark.pedantic(learner.step, args=(batch, 1), rounds=10, iterations=1, warmup_rounds=2)
    assert math.isfinite(loss)


def test_glyph_generation_time(benchmark):
    torch.set_num_threads(1)
    g = config.load().classification.glyphs
    start = time.perf_counter()
    splits = benchmark.pedantic(generate, args=(g.scripts, g.instances, g.size, g.dedupe, g.split, g.seed), rounds=1)
    seconds = time.perf_counter() - start
    classes = sum(len(s.names) for s in splits.values())
    benchmark.extra_info["classes"] = classes
    print(f"\nglyph set: {classes} classes x {g.instances} instances in {seconds:.1f} s")
    assert seconds < 120, f"rendering the glyph set took {seconds:.0f} s (budget: 120 s)"
