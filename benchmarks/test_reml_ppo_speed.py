"""Timesteps per second of sinusoid REML training, for each agent: the default profile's environment
(pool 4 + 20 + 4 of width 40, 5 layers, 10 inner Adam steps, K drawn from {5, 10, 20}) and PPO settings
(rollouts of 500 steps, minibatches of 50, 10 epochs), 1,000 timesteps per round: environment steps,
policy inference and the PPO updates together. Run with `make bench`.
"""

import pytest

from reml.core.seeding import configure_torch, generator
from reml.families.sinusoid import config
from reml.families.sinusoid.reml import create_pool, make_env
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.config import REML_AGENTS
from reml.methods.reml.agents import make_agent

TIMESTEPS = 1000


@pytest.mark.parametrize("agent", REML_AGENTS)
def test_training_timesteps_per_second(benchmark, agent):
    configure_torch()
    params = config.load()
    pool = create_pool(params.reml, generator(0, "bench"))
    env = make_env(pool, params.reml, SinusoidDistribution(), params.adaptation.shots, "support")
    algorithm = make_agent(agent, env, params.train_reml.ppo, seed=0)

    def learn():
        algorithm.learn(TIMESTEPS, reset_num_timesteps=False)

    benchmark.pedantic(learn, rounds=3, warmup_rounds=1)
    if benchmark.stats is not None:  # absent under --benchmark-disable
        rate = TIMESTEPS / benchmark.stats.stats.mean
        benchmark.extra_info["timesteps_per_second"] = round(rate, 1)
        print(f"\n{agent}: {rate:.0f} timesteps/s")
