"""Episodes per second of the REML composition environment: 5 layers (input, 3 hidden, output) of
width 40 from a pool of 4 + 20 + 4, 10 inner Adam steps on K = 10 support points, valid random actions.
The target is at least 50 episodes/s on 2 cores (docs/benchmarks.md). Run with `make bench`.
"""

import numpy as np

from reml.core.seeding import configure_torch, generator
from reml.families.sinusoid.reml import RegressionCompositionEnv
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.reml.pool import linear_pool

EPISODES = 50


def test_composition_episodes_per_second(benchmark):
    configure_torch()
    pool = linear_pool(1, 40, 1, n_input=4, n_hidden=20, n_output=4, generator=generator(0, "bench"))
    env = RegressionCompositionEnv(pool, SinusoidDistribution(), depth=3, k_support=10, k_query=10, inner_steps=10)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def episodes():
        for _ in range(EPISODES):
            env.reset()
            terminated = False
            while not terminated:
                _, _, terminated, _, _ = env.step(rng.choice(np.flatnonzero(env.action_masks())))

    benchmark.pedantic(episodes, rounds=5, warmup_rounds=1)
    if benchmark.stats is not None:  # absent under --benchmark-disable
        rate = EPISODES / benchmark.stats.stats.mean
        benchmark.extra_info["episodes_per_second"] = round(rate, 1)
        print(f"\ncomposition env: {rate:.0f} episodes/s")
