"""The sinusoid REML composition environment: slots, masks, remapping, write-back, rewards, encodings."""

import math

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_checker import check_env

from reml.core.seeding import generator
from reml.families.sinusoid.reml import RegressionCompositionEnv
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.reml.env import bounded_reward, relative_reward
from reml.methods.reml.pool import linear_pool


def make_pool():
    return linear_pool(1, 8, 1, n_input=2, n_hidden=5, n_output=2, generator=generator(0, "pool-test"))


def make_env(**kwargs):
    return RegressionCompositionEnv(make_pool(), SinusoidDistribution(), depth=3, k_support=5, k_query=7, **kwargs)


def run_episode(env, actions, **reset_kwargs):
    env.reset(**reset_kwargs)
    steps, info, reward = 0, {}, 0.0
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        steps += 1
        if terminated or truncated:
            break
    return steps, reward, info


def test_passes_the_sb3_env_checker():
    check_env(make_env())


def test_masks_for_every_slot():
    env = make_env()  # indices: input 0-1, hidden 2-6, output 7-8
    env.reset(seed=0)
    assert np.flatnonzero(env.action_masks()).tolist() == [0, 1]
    env.step(1)
    assert np.flatnonzero(env.action_masks()).tolist() == [2, 3, 4, 5, 6]
    env.step(4)
    assert np.flatnonzero(env.action_masks()).tolist() == [2, 3, 5, 6]  # no repeated hidden layer
    env.step(2)
    env.step(6)
    assert np.flatnonzero(env.action_masks()).tolist() == [7, 8]


def test_invalid_actions_are_remapped_counted_and_cannot_extend_an_episode():
    env = make_env()
    # Every action invalid for its slot: an output layer first, then inputs, then a hidden layer last.
    steps, _, info = run_episode(env, [8, 0, 0, 1, 3, 3, 3, 3, 3, 3], seed=1)
    assert steps == env.n_slots == 5
    env.pool.check_network(info["layers"])  # what was built is a valid network
    env2 = make_env()
    env2.reset(seed=1)
    flags = [env2.step(a)[4]["invalid"] for a in [8, 0, 0, 1, 3]]
    assert flags == [True, True, True, True, True]


def test_write_back_changes_exactly_the_chosen_layers():
    env = make_env(blend=1.0)
    before = env.pool
    _, reward, info = run_episode(env, [1, 2, 4, 6, 7], seed=2)
    after = env.pool
    assert info["layers"] == [1, 2, 4, 6, 7] and 0 < reward <= 1
    for index in range(before.size):
        changed = any(not torch.equal(before.layer(index)[n], after.layer(index)[n]) for n in ("weight", "bias"))
        assert changed == (index in info["layers"]), index
    assert after.trained.tolist() == [0, 1, 1, 0, 1, 0, 1, 1, 0]
    assert after.chosen.tolist() == after.trained.tolist()


def test_without_write_back_the_weights_stay_and_only_counts_change():
    env = make_env(write_back=False)
    before = env.pool
    run_episode(env, [0, 3, 4, 5, 8], seed=3)
    for kind, parts in before.parts.items():
        assert all(torch.equal(t, env.pool.parts[kind][name]) for name, t in parts.items())
    assert env.pool.chosen.sum() == 5 and env.pool.trained.sum() == 0


def test_composing_for_a_test_task_uses_support_only_and_never_touches_the_pool():
    env = make_env()
    before = env.pool
    task = SinusoidDistribution().sample(1, 5, 7, generator(4, "pool-test"))
    steps, reward, info = run_episode(env, [0, 2, 3, 4, 7], options={"support": (task.support_x[0], task.support_y[0])})
    assert steps == 5 and reward == 0.0 and "loss" not in info
    assert env.pool is before  # not even the counts change


def test_reward_is_bounded_and_monotone():
    losses = [0.0, 1e-9, 1e-3, 0.1, 1.0, 4.0, 100.0, 1e6, 1e30]
    rewards = [bounded_reward(loss, scale=1.0) for loss in losses]
    assert rewards[0] == 1.0
    assert all(0.0 <= r <= 1.0 for r in rewards)
    assert all(a >= b for a, b in zip(rewards, rewards[1:], strict=False))
    assert bounded_reward(math.inf, 1.0) == 0.0 and bounded_reward(math.nan, 1.0) == 0.0


def test_same_seed_same_episode():
    runs = [run_episode(make_env(), [1, 2, 5, 6, 8], seed=7) for _ in range(2)]
    assert runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2]


def test_dense_reward_telescopes_to_the_terminal_reward():
    actions = [1, 2, 5, 6, 8]
    env_t, env_d = make_env(reward="terminal"), make_env(reward="dense")
    for env in (env_t, env_d):
        env.reset(seed=11)
    terminal = [env_t.step(a)[1] for a in actions]
    dense = [env_d.step(a)[1] for a in actions]
    assert terminal[:-1] == [0.0] * 4 and 0 < terminal[-1] <= 1
    assert any(r != 0 for r in dense[:-1]) and all(-1 <= r <= 1 for r in dense)
    assert sum(dense) == pytest.approx(terminal[-1], abs=1e-12)


def test_observation_encodes_any_k_up_to_k_encode_and_the_network_features():
    env = RegressionCompositionEnv(make_pool(), SinusoidDistribution(), depth=3, k_support=(5, 10), k_query=7)
    assert env.k_encode == 10 and env.observation_space.shape == (3 * 10 + 9 + 5 + 2,)
    ks = set()
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        present = obs[: 3 * 10].reshape(10, 3)[:, 2]
        k = int(present.sum())
        ks.add(k)
        assert present.tolist() == [1.0] * k + [0.0] * (10 - k)  # padded after the K-th point
        x = obs[: 3 * 10].reshape(10, 3)[:k, 0]
        assert np.all(np.diff(x) >= 0)  # sorted by x
    assert ks == {5, 10}
    task = SinusoidDistribution().sample(1, 3, 1, generator(5, "pool-test"))
    obs, _ = env.reset(options={"support": (task.support_x[0], task.support_y[0])})
    loss_feature = obs[-2]
    assert loss_feature == pytest.approx(np.log1p(float((task.support_y[0] ** 2).mean())), rel=1e-6)
    with pytest.raises(ValueError, match="encodes at most 10"):
        big = SinusoidDistribution().sample(1, 11, 1, generator(5, "pool-test"))
        env.reset(options={"support": (big.support_x[0], big.support_y[0])})


def test_oracle_encoding_needs_the_task_parameters_to_compose():
    env = make_env(encoding="oracle")
    check_env(env)
    task = SinusoidDistribution().sample(1, 5, 7, generator(6, "pool-test"))
    with pytest.raises(ValueError, match="task_params"):
        env.reset(options={"support": (task.support_x[0], task.support_y[0])})
    obs, _ = env.reset(options={"support": (task.support_x[0], task.support_y[0]), "task_params": task.task_params[0]})
    assert obs[:2].tolist() == pytest.approx(task.task_params[0].tolist())


def test_the_meta_gradient_update_moves_only_the_chosen_layers_down_the_query_loss():
    env = make_env(pool_update="meta_gradient", inner_optimizer="sgd", inner_lr=0.01, inner_steps=1, meta_lr=1e-3)
    before = env.pool
    layers = [0, 2, 3, 4, 7]
    _, _, info = run_episode(env, layers, seed=3)
    task = dict(env._task)
    changed = [i for i in range(before.size) if not torch.equal(before.layer(i)["weight"], env.pool.layer(i)["weight"])]
    assert changed == layers  # every chosen layer took a step, no other moved
    assert env.pool.trained[layers].tolist() == [1] * 5 and int(env.pool.trained.sum()) == 5
    # the step lowered the same task's post-adaptation query loss (a small Adam step along its gradient)
    rerun = make_env(pool_update="meta_gradient", inner_optimizer="sgd", inner_lr=0.01, inner_steps=1, meta_lr=1e-3)
    rerun.pool = env.pool
    rerun._chosen, rerun._task = list(layers), task
    again = {}
    rerun._finish(again)
    assert again["loss"] < info["loss"]


def test_relative_reward_is_task_relative_bounded_and_monotone():
    assert relative_reward(1.0, 1.0) == 0.5  # as good as predicting zero
    assert relative_reward(0.1, 4.0) == relative_reward(0.025, 1.0)  # the same relative gain pays the same
    assert relative_reward(math.inf, 1.0) == 0.0 and 0 < relative_reward(100.0, 1.0) < relative_reward(1.0, 1.0)
    env = make_env(reward="relative")
    _, reward, info = run_episode(env, [0, 2, 3, 4, 7], seed=4)
    reference = float((env._task["query_y"] ** 2).mean())
    assert reward == pytest.approx(reference / (reference + info["loss"]))
