"""Speed of the shared evaluation harness: 600 test tasks, K = 10, 10 SGD steps, 1-40-40-1 MLP.

The vmapped harness (what every method is scored with) against a Python loop over tasks running the
same per-task function. Run with `make bench`; not part of `make test`.
"""

import pytest
import torch

from reml.core.harness import Adaptation, adaptation_trajectory, batched_trajectories
from reml.core.nets import MLP
from reml.core.seeding import configure_torch, generator
from reml.families.sinusoid.tasks import SinusoidDistribution

ADAPTATION = Adaptation("sgd", lr=0.01, steps=10)


@pytest.fixture(scope="module")
def problem():
    configure_torch()  # one thread, as in the pipeline
    model = MLP((1, 40, 40, 1))
    params = model.init(generator(0, "bench"))
    tasks = SinusoidDistribution().sample(600, 10, 100, generator(0, "bench-tasks"))
    return model, params, tasks


@pytest.mark.benchmark(group="evaluate 600 tasks x 10 steps")
def test_vmapped(benchmark, problem):
    model, params, tasks = problem
    out = benchmark.pedantic(
        batched_trajectories, args=(model, params, tasks.support_x, tasks.support_y, tasks.query_x, ADAPTATION),
        rounds=5, warmup_rounds=1,
    )  # fmt: skip
    assert out.shape == (600, 11, 100, 1)


@pytest.mark.benchmark(group="evaluate 600 tasks x 10 steps")
def test_per_task_loop(benchmark, problem):
    model, params, tasks = problem

    def loop():
        return torch.stack([
            adaptation_trajectory(model, params, tasks.support_x[i], tasks.support_y[i], tasks.query_x[i], ADAPTATION)
            for i in range(len(tasks))
        ])  # fmt: skip

    out = benchmark.pedantic(loop, rounds=3, warmup_rounds=1)
    assert out.shape == (600, 11, 100, 1)
