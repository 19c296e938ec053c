"""REML for classification: the conv composition environment (masks, remapping, reward, write-back), a
test-time composition that leaves the pool byte-identical, and the ablations on the agent's pool."""

import torch

from reml.core.harness import Adaptation
from reml.core.seeding import generator
from reml.families.classification import config
from reml.families.classification.nets import ConvNet
from reml.families.classification.reml import (
    ClassificationComposer,
    ConvCompositionEnv,
    ablations,
    block_pool,
    tune_ablations,
)
from reml.families.classification.tasks import EpisodeDistribution
from reml.methods.reml.pool import load_pool, save_pool
from tests.families.classification.helpers import edit_params, toy_pool


def make_env(write_back=True):
    net = ConvNet(1, 4, 3, 28)
    pool = block_pool(net, 2, 4, 2, generator(0, "pool"))
    return ConvCompositionEnv(pool, net, EpisodeDistribution(toy_pool(), 3), (1, 2), 2, 0.3, 2, 1.0, write_back, 1.0)


def test_conv_composition_env_episode_masks_and_reward():
    env = make_env()
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs) and env.n_slots == 5
    before = {k: v.clone() for k, v in env.pool.parts["hidden"].items()}
    rewards = []
    for step in range(5):
        mask = env.action_masks()
        assert mask.sum() == [2, 4, 3, 2, 2][step]  # input blocks, hidden without repeats, heads
        obs, reward, done, _, info = env.step(0)  # block 0 is only valid in the first slot: remapped after
        rewards.append(reward)
        assert done == (step == 4) and info["invalid"] == (step > 0)
    assert 0 < rewards[-1] <= 1 and rewards[:-1] == [0.0] * 4
    assert env.pool.trained.sum() == 5  # the chosen blocks were written back
    assert any(not torch.equal(before[k], env.pool.parts["hidden"][k]) for k in before)


def test_composing_for_a_test_episode_never_changes_the_pool(tmp_path):
    env = make_env(write_back=False)
    episode = EpisodeDistribution(toy_pool(), 3).sample(1, 2, 2, generator(5, "t"))
    save_pool(tmp_path / "before.safetensors", env.pool, {})
    env.reset(options={"support": (episode.support_x[0], episode.support_y[0])})
    for _ in range(5):
        *_, info = env.step(int(env.action_masks().argmax()))
    assert "loss" not in info and len(info["layers"]) == 5
    save_pool(tmp_path / "after.safetensors", env.pool, {})
    assert (tmp_path / "before.safetensors").read_bytes() == (tmp_path / "after.safetensors").read_bytes()
    pool, _ = load_pool(tmp_path / "after.safetensors", "t")
    params = pool.network(info["layers"])
    assert env.model(params, episode.query_x[0]).shape == (6, 3)


def test_ablations_use_the_agents_pool_and_fixed_is_the_most_chosen_on_validation(params_copy):
    def edit(c):
        c.update(ways=[3], shots=[1, 2], n_query=2)
        c["evaluate"].update(n_val=4, steps=1, lr_grid=[0.1, 0.3])

    cfg = config.load(edit_params(params_copy, edit)).classification
    env = make_env(write_back=False)
    composer = ClassificationComposer("reml_maskable", None, env)
    chosen = iter([[0, 2, 3, 4, 6]] * 5 + [[1, 2, 3, 5, 7]] * 3)  # 8 validation episodes (2 K x 4)
    composer.compositions = lambda episodes: [next(chosen) for _ in range(len(episodes))]
    before = {k: v.clone() for k, v in env.pool.parts["hidden"].items()}
    info = {"seed": 3, "ablations": tune_ablations(composer, cfg, toy_pool(), 3, 3, torch.device("cpu"))}
    fixed_meta = info["ablations"]["reml_fixed"]
    assert fixed_meta["layers"] == [0, 2, 3, 4, 6] and fixed_meta["val_share"] == 0.625
    assert set(info["ablations"]["reml_random"]["step_sizes"]) == {"1", "2"}
    random, fixed = ablations(composer, info)
    assert (random.agent, fixed.agent) == ("reml_random", "reml_fixed") and fixed.layers == (0, 2, 3, 4, 6)
    assert random.env.pool is env.pool and all(torch.equal(before[k], env.pool.parts["hidden"][k]) for k in before)
    episodes = EpisodeDistribution(toy_pool(), 3).sample(6, 1, 2, generator(9, "t"))
    others = EpisodeDistribution(toy_pool(), 3).sample(6, 1, 2, generator(10, "t"))
    drawn = random.initial_params(episodes)
    assert all(torch.equal(drawn[k], random.initial_params(others)[k]) for k in drawn)  # never reads the episode
    assert drawn["0.conv.weight"].shape[0] == 6 and not torch.equal(
        drawn["1.conv.weight"][0], drawn["1.conv.weight"][1]
    )
    same = fixed.initial_params(episodes)
    assert all(torch.equal(same[k][0], same[k][5]) for k in same)
    assert torch.equal(same["1.conv.weight"][0], env.pool.layer(2)["conv.weight"])
    curve = fixed.score(episodes, Adaptation("sgd", fixed.step_sizes[1], 1))
    assert curve.per_task.shape == (6, 2)
