"""REML for meta-RL (reml/families/rl/reml.py): the task encoding from probe rollouts, the bounded reward, the
composition episode (masks, three steps, write-back of the chosen layers only), meta-test composition
that never touches the pool, and the composer's checkpoint."""

import math

import numpy as np
import pytest
import torch

from reml.core.io import ArtifactError
from reml.core.seeding import generator
from reml.families.rl.navigation import NAVIGATION2D
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.reml import (
    N_SLOTS,
    ComposeSettings,
    RLCompositionEnv,
    composition_reward,
    encode_task,
    encoding_dim,
    load_rl_composer,
    probe_params,
    save_rl_composer,
)
from reml.families.rl.sampler import Sampler
from reml.methods.config import PpoConfig
from reml.methods.reml.agents import make_agent
from reml.methods.reml.pool import LayerPool, linear_pool, pool_tensors

CPU = torch.device("cpu")

PPO = PpoConfig(learning_rate=3e-4, clip_range=0.2, n_steps=6, batch_size=3, n_epochs=1, gamma=1.0, ent_coef=0.0)
SETTINGS = ComposeSettings(rollouts=4, inner_lr=0.1, inner_steps=1, gamma=0.99, return_scale=10.0, blend=1.0)


def small_pool(seed: int = 0) -> LayerPool:
    return linear_pool(2, 16, 2, 2, 3, 2, generator(seed, "pool"))


def same_pool(a: LayerPool, b: LayerPool) -> bool:
    return all(torch.equal(t, pool_tensors(b)[n]) for n, t in pool_tensors(a).items())


def test_encoding_reads_the_goal_direction_from_the_probe_rollouts():
    """Goals to the right and to the left: the reward's regression on the x position changes sign."""
    policy = GaussianPolicy(2, 2)
    tasks = np.array([[0.5, 0.0], [-0.5, 0.0]])
    with Sampler(NAVIGATION2D, 40) as sampler:
        probe = sampler.sample(policy, probe_params(policy), tasks, 20, generator(0, "probe"))
    codes = encode_task(probe)
    assert codes.shape == (2, encoding_dim(2, 2)) and torch.isfinite(codes).all()
    assert codes[0, 0] > 0.1 and codes[1, 0] < -0.1  # feature 0: the x position
    for i in range(2):  # each task's code comes from its own rollouts: batching does not mix tasks
        assert torch.allclose(encode_task(probe.task(i))[0], codes[i], atol=1e-6)


def test_composition_reward_is_bounded_and_increasing_in_the_return():
    returns = [-1e6, -100.0, -50.0, -10.0, 0.0, 30.0, 1e6]
    rewards = [composition_reward(g, probe=-50.0, scale=10.0) for g in returns]
    assert all(0.0 <= r <= 1.0 for r in rewards) and rewards == sorted(rewards)
    assert composition_reward(-50.0, -50.0, 10.0) == pytest.approx(0.5)
    assert composition_reward(math.nan, -50.0, 10.0) == 0.0


def test_training_episode_is_three_masked_steps_and_writes_back_the_chosen_layers():
    pool = small_pool()
    with Sampler(NAVIGATION2D, 4) as sampler:
        env = RLCompositionEnv(pool, torch.zeros(2), NAVIGATION2D, 2, 2, SETTINGS, sampler)
        obs, _ = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape
        kinds, invalid = [], []
        for step, action in enumerate([0, 5, 5]):  # 5 is an output layer: invalid in the hidden slot
            mask = env.action_masks()
            kinds.append({pool.kind(i) for i in np.flatnonzero(mask)})
            obs, reward, terminated, _, info = env.step(action)
            invalid.append(info["invalid"])
            assert terminated == (step == N_SLOTS - 1)
        assert kinds == [{"input"}, {"hidden"}, {"output"}]
    layers = info["layers"]
    assert layers[0] == 0 and pool.kind(layers[1]) == "hidden" and layers[2] == 5 and invalid == [False, True, False]
    assert 0.0 < reward < 1.0 and math.isfinite(info["return"]) and math.isfinite(info["probe_return"])
    assert info["rejected"] is False  # this seed's inner step raised the return, so it is written back
    after = env.pool
    for index in range(pool.size):  # only the chosen layers moved; every layer was counted exactly once
        assert torch.equal(pool.layer(index)["weight"], after.layer(index)["weight"]) == (index not in layers)
    assert after.chosen.tolist() == after.trained.tolist() == [int(i in layers) for i in range(pool.size)]


def test_a_diverged_inner_step_scores_zero_and_writes_nothing_back():
    """A composed policy whose inner step leaves non-finite weights gets reward 0 and never enters the pool."""
    pool = small_pool()
    diverging = ComposeSettings(rollouts=4, inner_lr=math.inf, inner_steps=1, gamma=0.99, return_scale=10.0, blend=1.0)
    with Sampler(NAVIGATION2D, 4) as sampler:
        env = RLCompositionEnv(pool, torch.zeros(2), NAVIGATION2D, 2, 2, diverging, sampler)
        env.reset(seed=0)
        for action in (0, 2, 5):
            _, reward, terminated, _, info = env.step(action)
    assert terminated and reward == 0.0 and info["diverged"] is True and math.isnan(info["return"])
    assert all(torch.equal(t, env.pool.parts[k][n]) for k, parts in pool.parts.items() for n, t in parts.items())
    assert torch.equal(env.log_std, torch.zeros(2)) and env.pool.trained.sum() == 0 and env.pool.chosen.sum() == 3


def test_an_inner_step_that_lowers_the_return_is_scored_but_not_written_back():
    """A step against the policy gradient (negative step size) lowers the return: the composition is still
    rewarded for its return, but the pool and the log std stay byte-identical (only the choice is counted)."""
    pool = small_pool()
    harmful = ComposeSettings(rollouts=4, inner_lr=-10.0, inner_steps=1, gamma=0.99, return_scale=10.0, blend=1.0)
    with Sampler(NAVIGATION2D, 4) as sampler:
        env = RLCompositionEnv(pool, torch.zeros(2), NAVIGATION2D, 2, 2, harmful, sampler)
        env.reset(seed=0)
        for action in (0, 2, 5):
            _, reward, terminated, _, info = env.step(action)
    assert terminated and info["rejected"] is True and info["diverged"] is False
    assert math.isfinite(info["return"]) and reward == composition_reward(info["return"], info["probe_return"], 10.0)
    assert all(torch.equal(t, env.pool.parts[k][n]) for k, parts in pool.parts.items() for n, t in parts.items())
    assert torch.equal(env.log_std, torch.zeros(2)) and env.pool.trained.sum() == 0 and env.pool.chosen.sum() == 3


def test_composer_training_is_deterministic_to_the_byte(tmp_path):
    """Same params and seed: the saved composer (agent, pool, log std) is byte-identical."""
    files = []
    for run in range(2):
        with Sampler(NAVIGATION2D, 4) as sampler:
            env = RLCompositionEnv(small_pool(), torch.zeros(2), NAVIGATION2D, 2, 2, SETTINGS, sampler)
            algorithm = make_agent("reml_maskable", env, PPO, seed=3)
            algorithm.learn(total_timesteps=2 * PPO.n_steps)
        files.append(tmp_path / f"run{run}.safetensors")
        save_rl_composer(files[-1], "reml_maskable", "navigation2d", algorithm, env, PPO, {"x": 1})
    assert files[0].read_bytes() == files[1].read_bytes()
    assert not same_pool(env.pool, small_pool())  # training did write back


def test_invalid_choices_are_remapped_and_counted():
    with Sampler(NAVIGATION2D, 4) as sampler:
        env = RLCompositionEnv(small_pool(), torch.zeros(2), NAVIGATION2D, 2, 2, SETTINGS, sampler)
        env.reset(seed=0)
        _, _, _, _, info = env.step(6)  # an output layer in the input slot
    assert info["invalid"] is True and env._chosen[0] in env.pool.indices("input")


def test_meta_test_composition_trains_nothing_and_round_trips_through_the_checkpoint(tmp_path):
    pool = small_pool()
    env = RLCompositionEnv(pool, torch.full((2,), -0.5), NAVIGATION2D, 2, 2, SETTINGS)  # no sampler needed
    algorithm = make_agent("reml_maskable", env, PPO, seed=0)
    save_rl_composer(tmp_path / "c.safetensors", "reml_maskable", "navigation2d", algorithm, env, PPO, {"x": 1})
    composer = load_rl_composer(tmp_path / "c.safetensors", "stage", "reml_maskable", NAVIGATION2D, device=CPU)
    tasks = NAVIGATION2D.sample_tasks(3, 0, stream="test")
    with Sampler(NAVIGATION2D, 12) as sampler:
        composed = composer.compose_tasks(tasks, sampler, generator(0, "probe"))
        params, layers, invalid = composed.params, composed.layers, composed.invalid_rate
        repeat = composer.compose_tasks(tasks, sampler, generator(0, "probe"))
        again, layers_again = repeat.params, repeat.layers
        probe = sampler.sample(composer.policy, composer.env.probe_policy_params, tasks, composer.probe_rollouts,
                               generator(0, "probe"))  # fmt: skip
        assert torch.equal(composed.probe_returns, probe.returns.mean(dim=1).double())  # the probe's own returns
    assert layers == layers_again and invalid == 0.0 and composer.config == {"x": 1}
    assert composer.probe_rollouts == SETTINGS.rollouts  # the probe of training, at meta-test too
    assert all(torch.equal(params[k], again[k]) for k in params)
    for i, chosen in enumerate(layers):  # each task's policy is exactly its chosen pool layers
        for slot, index in enumerate(chosen):
            assert torch.equal(params[f"{slot}.weight"][i], pool.layer(index)["weight"])
    assert torch.equal(params["log_std"], torch.full((3, 2), -0.5))
    back = composer.env.pool
    assert same_pool(back, pool)
    with pytest.raises(ArtifactError, match="holds reml_maskable for navigation2d, expected reml_ppo"):
        load_rl_composer(tmp_path / "c.safetensors", "stage", "reml_ppo", NAVIGATION2D, device=CPU)
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(ArtifactError, match=r"bad\.safetensors: not a valid REML composer"):
        load_rl_composer(tmp_path / "bad.safetensors", "stage", "reml_maskable", NAVIGATION2D, device=CPU)


def test_harness_scores_per_task_policies_like_shared_ones():
    """Stacked copies of one policy (REML's per-task start) give the shared policy's returns."""
    from reml.families.rl.evaluate import adaptation_returns

    policy = GaussianPolicy(2, 2)
    params = policy.init(generator(0, "t"))
    tasks = NAVIGATION2D.sample_tasks(3, 0, stream="test")
    stacked = {k: v.expand(3, *v.shape).clone() for k, v in params.items()}
    with Sampler(NAVIGATION2D, 6) as sampler:
        shared = adaptation_returns(policy, params, tasks, sampler, (0.1,), 2, 0.99, generator(0, "e"))
        per_task = adaptation_returns(policy, stacked, tasks, sampler, (0.1,), 2, 0.99, generator(0, "e"),
                                      per_task=True)  # fmt: skip
    assert torch.allclose(shared.per_task, per_task.per_task, atol=1e-4)


def test_report_says_which_policies_were_composed_and_flags_an_agent_that_ignored_the_task():
    from reml.families.rl.report import _reml_lines

    def entry(compositions):
        return {"probe_rollouts": 10, "test_rollouts": 20, "invalid_rate": 0.0,
                "distinct_policies": len(compositions), "compositions": compositions}  # fmt: skip

    one = entry([{"layers": [0, 5, 6], "tasks": 40, "mean_task": [0.1, 0.0]}])
    two = entry([{"layers": [1, 5, 7], "tasks": 28, "mean_task": [-0.57]},
                 {"layers": [1, 5, 9], "tasks": 12, "mean_task": [1.0]}])  # fmt: skip
    [ignored], [used] = _reml_lines({"pretrained": {}, "reml_maskable": one}), _reml_lines({"reml_maskable": two})
    assert "layers 0-5-6 for 40 tasks" in ignored and "ignored the task" in ignored
    assert "layers 1-5-9 for 12 tasks (mean task 1)" in used and "ignored" not in used
    assert "from 10 probe episodes" in used and "1-step row has seen 20" in used
