"""REML for classification: the conv composition environment (masks, remapping, reward, write-back) and a
test-time composition that leaves the pool byte-identical."""

import torch

from reml.core.seeding import generator
from reml.families.classification.nets import ConvNet
from reml.families.classification.reml import ConvCompositionEnv, block_pool
from reml.families.classification.tasks import EpisodeDistribution
from reml.methods.reml.pool import load_pool, save_pool
from tests.families.classification.helpers import toy_pool


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
