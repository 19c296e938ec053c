"""RL²: a trial is one episode to SB3, the hidden state is carried across a trial's episodes and starts
from zero in every trial, the scoring loop draws the harness's noise and equals a plain per-trial loop,
a short training run learns to use the trial, and one seed gives the same bytes."""

import numpy as np
import pytest
import torch

from reml.core.config import ConfigError
from reml.core.seeding import generator
from reml.families.rl import rl2
from reml.families.rl.navigation import NAVIGATION2D
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.sampler import Sampler

CFG = rl2.Rl2Config(seed=0, trial_episodes=2, lstm_hidden=16, hidden=(32,), n_envs=4, n_steps=200, batch_size=200,
                    n_epochs=4, learning_rate=3e-3, ent_coef=0.0)  # fmt: skip


def test_a_trial_is_one_task_over_its_episodes_and_ends_only_after_the_last():
    env = rl2.TrialEnv(NAVIGATION2D, episodes=3, generator=generator(0, "rl/navigation2d/rl2"))
    obs, _ = env.reset(seed=0)
    task = env.task.copy()
    assert obs.shape == (2 + 2 + 2,) and np.array_equal(obs, [0, 0, 0, 0, 0, 1])
    action = np.array([0.5, 2.0])  # the second coordinate is clipped to the action space
    for episode in range(3):
        for t in range(NAVIGATION2D.horizon):
            obs, reward, terminated, truncated, info = env.step(action)
            last = t == NAVIGATION2D.horizon - 1
            assert not truncated and terminated == (last and episode == 2)
            assert obs[-1] == (1.0 if last and episode < 2 else 0.0)
            assert np.allclose(obs[2:4], [0.5, 1.0]) and np.isclose(obs[4], reward)
        assert np.array_equal(env.task, task)
    assert len(info["episode_returns"]) == 3 and info["episode_returns"][0] == pytest.approx(info["episode_returns"][1])
    env.reset()
    assert not np.array_equal(env.task, task)  # the next trial is another task


def test_the_scoring_loop_draws_the_harness_noise_in_the_harness_order():
    """With a zero-mean, unit-std Gaussian policy the sampler's actions are its noise: RL²'s draws must be
    those, column by column, and leave the generator where the sampler leaves it."""
    tasks = NAVIGATION2D.sample_tasks(3, seed=0, stream="test")
    policy = GaussianPolicy(2, 2)
    params = {k: torch.zeros_like(v) for k, v in policy.init(torch.Generator().manual_seed(0)).items()}
    ours, theirs = generator(5, "eval"), generator(5, "eval")
    seeds, noise = rl2.harness_draws(3, 4, 2, NAVIGATION2D.horizon, 2, ours)
    with Sampler(NAVIGATION2D, n_envs=12) as sampler:
        for c in range(3):
            episodes = sampler.sample(policy, params, tasks, 4, theirs)
            assert torch.equal(episodes.actions.reshape(12, NAVIGATION2D.horizon, 2), noise[c])
    assert torch.equal(ours.get_state(), theirs.get_state()) and seeds.shape == (3, 12)


def _reference(policy, family, tasks, rollouts, steps, gen, reset_within_trial=False):
    """One trial at a time through a TrialEnv, the LSTM state carried by hand (or, to show it matters,
    reset at each episode's start)."""
    seeds, noise = rl2.harness_draws(len(tasks), rollouts, steps, family.horizon, 2, gen)
    out = np.zeros((len(tasks), rollouts, steps + 1))
    for i in range(len(tasks) * rollouts):
        env = rl2.TrialEnv(family, steps + 1)
        obs, _ = env.reset(options={"task": tasks[i // rollouts], "seeds": seeds[:, i]})
        zero = torch.zeros(1, 1, policy.lstm_actor.hidden_size)
        state, done = (zero, zero), False
        while not done:
            if reset_within_trial and env.t == 0:
                state = (zero, zero)
            with torch.no_grad():
                dist, state = policy.get_distribution(torch.as_tensor(obs[None]), state, torch.zeros(1))
            action = dist.distribution.mean + dist.distribution.stddev * noise[env.episode, i, env.t]
            obs, _, done, _, info = env.step(action[0].numpy())
        out[i // rollouts, i % rollouts] = info["episode_returns"]
    return out.mean(axis=1)


def test_the_batched_scores_equal_a_trial_by_trial_loop_and_the_state_is_carried():
    torch.manual_seed(0)
    policy = rl2.build_policy(NAVIGATION2D, CFG)
    with torch.no_grad():  # a policy whose actions depend on its memory: larger recurrent weights
        policy.lstm_actor.weight_hh_l0.mul_(3)
        policy.lstm_actor.weight_ih_l0.mul_(3)
    tasks = NAVIGATION2D.sample_tasks(3, seed=0, stream="test")
    batched = rl2.trial_returns(policy, NAVIGATION2D, tasks, rollouts=2, steps=2, generator=generator(1, "e"))
    plain = _reference(policy, NAVIGATION2D, tasks, 2, 2, generator(1, "e"))
    assert np.allclose(batched.per_task.numpy(), plain, rtol=0, atol=1e-5)  # float32: batching moves the last bits
    forgetful = _reference(policy, NAVIGATION2D, tasks, 2, 2, generator(1, "e"), reset_within_trial=True)
    assert np.allclose(forgetful[:, 0], plain[:, 0], rtol=0, atol=1e-5)  # the first episode starts from zero either way
    assert np.abs(forgetful[:, 1:] - plain[:, 1:]).max() > 1e-2  # later ones read the carried state


def test_a_saved_policy_loads_as_the_same_policy_and_a_mismatch_is_named(tmp_path):
    from reml.core.io import ArtifactError

    torch.manual_seed(0)
    policy = rl2.build_policy(NAVIGATION2D, CFG)
    path = tmp_path / "rl2.safetensors"
    rl2.save_rl2(path, policy, NAVIGATION2D, CFG, {"timesteps": 1})
    loaded, cfg, config = rl2.load_rl2(path, "train_rl2@navigation2d-0", NAVIGATION2D)
    assert cfg == CFG and config == {"timesteps": 1}
    for (k, v), (k2, v2) in zip(policy.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    from reml.families.rl.locomotion import CHEETAH_DIR

    with pytest.raises(ArtifactError, match="navigation2d.*train_rl2@navigation2d-0"):
        rl2.load_rl2(path, "train_rl2@navigation2d-0", CHEETAH_DIR)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"trial_episodes": 0}, "trial_episodes"),
        ({"hidden": ()}, "hidden"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"ent_coef": -1.0}, "ent_coef"),
        ({"batch_size": 10_000}, "batch_size"),
    ],
)
def test_bad_settings_name_the_key(change, key):
    from dataclasses import asdict

    with pytest.raises(ConfigError, match=key):
        rl2.Rl2Config(**(asdict(CFG) | change))


def _train(timesteps):
    return rl2.train_rl2(NAVIGATION2D, CFG, timesteps, 0.99, generator(0, "rl/navigation2d/rl2"), seed=0,
                         device=torch.device("cpu"))  # fmt: skip


def test_a_short_training_run_improves():
    """On navigation2d, scored by the harness's loop on 10 validation tasks x 4 trials (the same noise for
    both): after 8,000 steps (10 PPO rollouts) the policy's returns beat those after the first rollout's
    update by 5 per episode (measured: -67.9 / -74.6 -> -57.5 / -61.4). A policy that does not learn
    stays where the first update left it."""
    tasks = NAVIGATION2D.sample_tasks(10, seed=0, stream="val")
    early, late = (
        rl2.trial_returns(_train(n)[0], NAVIGATION2D, tasks, 4, 1, generator(0, "score")) for n in (800, 8_000)
    )
    assert (late.mean - early.mean).min() > 5, (early.mean, late.mean)


def test_one_seed_gives_the_same_bytes():
    (a, _), (b, _) = _train(1_600), _train(1_600)
    for v, w in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w)
