"""Meta-RL: task rewards by hand, the sampler, the linear feature baseline, REINFORCE adaptation,
TRPO's conjugate gradient and line search, and a short MAML-TRPO run on 2D navigation."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.maml_trpo import MamlTrpoSettings, torch_threads, train_maml_trpo
from reml.rl.pg import TaskBatch, adapt, baseline_features, discounted_returns, fit_baseline, reinforce_loss
from reml.rl.policy import GaussianPolicy
from reml.rl.sampler import Rollouts, Sampler, worker_cores
from reml.rl.trpo import conjugate_gradient, flatten, trpo_step
from reml.seeding import generator
from reml.tasks.locomotion import (
    ANT_DIR,
    ANT_VEL,
    CHEETAH_DIR,
    CHEETAH_VEL,
    KNOWN_MUJOCO_WARNING,
    forward_mujoco_warning,
)
from reml.tasks.navigation import NAVIGATION2D
from reml.tasks.rl import RL_FAMILIES, rl_family


def test_navigation_reward_and_goal_by_hand():
    env = NAVIGATION2D.make_env()
    env.set_task(np.array([0.15, -0.05]))
    obs, _ = env.reset(seed=0)
    assert np.array_equal(obs, [0.0, 0.0])
    assert env.action_space.low.tolist() == [-1, -1] and env.action_space.high.tolist() == [1, 1]
    obs, reward, terminated, _, _ = env.step(np.array([5.0, -0.2]))  # normalised: x clipped to 1, i.e. 0.1
    assert np.allclose(obs, [0.1, -0.02]) and reward == pytest.approx(-np.hypot(0.05, 0.03)) and not terminated
    obs, reward, terminated, _, _ = env.step(np.array([0.5, -0.3]))  # velocity (0.05, -0.03)
    assert reward == pytest.approx(0.0, abs=1e-9) and terminated  # on the goal: the episode ends


def test_task_sampling_is_seeded_and_streams_differ():
    a = NAVIGATION2D.sample_tasks(50, seed=0, stream="test")
    assert np.array_equal(a, NAVIGATION2D.sample_tasks(50, seed=0, stream="test"))
    assert not np.array_equal(a, NAVIGATION2D.sample_tasks(50, seed=0, stream="train"))
    assert a.shape == (50, 2) and a.min() >= -0.5 and a.max() <= 0.5
    assert set(CHEETAH_DIR.sample_tasks(40, 0)[:, 0]) == {-1.0, 1.0}
    vel = ANT_VEL.sample_tasks(100, 0)
    assert vel.min() >= 0 and vel.max() <= 3 and vel.max() > 2
    with pytest.raises(ValueError, match="unknown RL family 'hopper'; allowed"):
        rl_family("hopper")
    assert {rl_family(n).name for n in RL_FAMILIES} == set(RL_FAMILIES)


@pytest.mark.parametrize("family", [CHEETAH_VEL, CHEETAH_DIR, ANT_VEL, ANT_DIR], ids=lambda f: f.name)
def test_locomotion_reward_from_the_simulator_state_by_hand(family):
    """The reward recomputed from the body's own positions (x velocity = dx / dt), the clipped action
    and, for Ant, the clipped external contact forces: MAML's formulas from the protocol page."""
    env = family.make_env()
    body = env.unwrapped
    task = family.sample_tasks(1, seed=3)[0]
    env.set_task(task)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.normal(0, 1.5, env.action_space.shape)  # some entries beyond [-1, 1]: clipped
        x_before = body.data.body(1).xpos[0] if family.name.startswith("ant") else body.data.qpos[0]
        _, reward, _, _, _ = env.step(action)
        x_after = body.data.body(1).xpos[0] if family.name.startswith("ant") else body.data.qpos[0]
        v = (x_after - x_before) / body.dt
        a = np.clip(action, -1, 1)
        if family.name.startswith("cheetah"):
            forward = -abs(v - task[0]) if family.name.endswith("vel") else task[0] * v
            expected = forward - 0.05 * np.sum(a**2)
        else:
            contact = 5e-4 * np.sum(np.clip(body.data.cfrc_ext, -1, 1) ** 2)
            forward = -abs(v - task[0]) + 1.0 if family.name.endswith("vel") else task[0] * v
            expected = forward - 0.005 * np.sum(a**2) - contact + 0.05
        assert reward == pytest.approx(expected, rel=1e-6, abs=1e-9)


def _fresh_python(code: str) -> str:
    """stdout and stderr of ``code`` run in a new interpreter (MuJoCo's handler is process-wide)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout + done.stderr


def test_mujoco_settotalmass_deprecation_is_dropped_and_other_warnings_raised():
    """gymnasium's cheetah model makes MuJoCo 4 print a deprecation for every body built (hundreds of
    lines in a run's log); our families drop exactly that one. If the control stops printing it, the
    upstream model was fixed and ``forward_mujoco_warning`` can go."""
    bare = "from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv; HalfCheetahEnv()"
    assert KNOWN_MUJOCO_WARNING in _fresh_python(bare)
    ours = "from reml.tasks.locomotion import CHEETAH_DIR, ANT_DIR; CHEETAH_DIR.make_env(); ANT_DIR.make_env()"
    assert "settotalmass" not in _fresh_python(ours)
    forward_mujoco_warning(KNOWN_MUJOCO_WARNING + ": scale the masses")  # dropped: no warning
    with pytest.warns(RuntimeWarning, match="MuJoCo: Nan, Inf or huge value in QACC"):
        forward_mujoco_warning("Nan, Inf or huge value in QACC at DOF 0.")
    kept = "import mujoco; mujoco.set_mju_user_warning(print)\n"
    kept += "from reml.tasks.locomotion import CHEETAH_DIR; CHEETAH_DIR.make_env()\n"
    kept += "assert mujoco.get_mju_user_warning() is print"
    assert KNOWN_MUJOCO_WARNING in _fresh_python(kept)  # a caller's own handler is left in place


def test_discounted_returns_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the episode ended after three steps
    out = discounted_returns(rewards, mask, gamma=0.5)
    assert torch.allclose(out, torch.tensor([[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0, 0.0]]))


def test_linear_baseline_matches_numpy_least_squares():
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 3, 6, 4, generator=gen) * 5
    targets = torch.randn(2, 3, 6, generator=gen)
    mask = torch.ones(2, 3, 6)
    mask[1, 2, 4:] = 0  # one shorter episode
    fitted = fit_baseline(obs, targets, mask)
    features = baseline_features(obs, mask).numpy()
    for t in range(2):
        keep = mask[t].numpy().reshape(-1) > 0
        f = features[t].reshape(-1, features.shape[-1])[keep]
        y = targets[t].numpy().reshape(-1)[keep]
        ridge = np.sqrt(1e-5) * np.eye(f.shape[1])  # the same ridge, as extra least-squares rows
        coeffs = np.linalg.lstsq(np.vstack([f, ridge]), np.concatenate([y, np.zeros(f.shape[1])]), rcond=None)[0]
        assert np.allclose(fitted[t].numpy().reshape(-1)[keep], f @ coeffs, atol=1e-4)
    assert (fitted[1, 2, 4:] == 0).all()


def test_conjugate_gradient_solves_a_small_spd_system():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=20)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)


def toy_rollouts(n_tasks=3, n_rollouts=4, horizon=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(n_tasks, n_rollouts, horizon, 2, generator=gen)
    actions = torch.randn(n_tasks, n_rollouts, horizon, 2, generator=gen)
    rewards = -obs.norm(dim=-1) + 0.1 * actions[..., 0]
    return Rollouts(obs, actions, rewards, torch.ones(n_tasks, n_rollouts, horizon))


def test_adapt_takes_each_tasks_own_gradient_step():
    policy = GaussianPolicy(2, 2, hidden=(8,))
    params = policy.init(generator(0, "t"))
    batch = TaskBatch.of(toy_rollouts(), gamma=0.9)
    adapted = adapt(policy, params, batch, lr=0.1)
    for t in range(3):
        one = TaskBatch(*(x[t : t + 1] for x in batch))
        p = {k: v.clone().requires_grad_() for k, v in params.items()}
        grads = torch.autograd.grad(reinforce_loss(policy, p, one).sum(), list(p.values()))
        for (name, value), g in zip(params.items(), grads, strict=True):
            assert torch.allclose(adapted[name][t], value - 0.1 * g, atol=1e-6)
    again = adapt(policy, adapted, batch, lr=0.1, per_task=True)  # a second step from per-task parameters
    assert again["0.weight"].shape == (3, 8, 2) and not torch.equal(again["0.weight"], adapted["0.weight"])


def test_second_order_meta_gradient_differs_from_first_order():
    policy = GaussianPolicy(2, 2, hidden=(8,))
    params = {k: v.requires_grad_() for k, v in policy.init(generator(0, "t")).items()}
    batch = TaskBatch.of(toy_rollouts(), gamma=0.9)
    valid = TaskBatch.of(toy_rollouts(seed=1), gamma=0.9)

    def meta_grad(first_order):
        new = adapt(policy, params, batch, lr=0.5, first_order=first_order)
        loss = reinforce_loss(policy, new, valid, per_task=True).mean()
        return flatten(torch.autograd.grad(loss, list(params.values())))

    second, first = meta_grad(False), meta_grad(True)
    assert torch.isfinite(second).all() and not torch.allclose(second, first, atol=1e-6)


def test_second_order_meta_gradient_matches_finite_differences():
    """d/dθ of the post-adaptation loss L(θ − α∇L_inner(θ)) against central differences (float64)."""
    policy = GaussianPolicy(2, 2, hidden=(4,))
    params = {k: v.double() for k, v in policy.init(generator(0, "t")).items()}
    batch = TaskBatch(*(x.double() for x in TaskBatch.of(toy_rollouts(n_tasks=2), gamma=0.9)))
    valid = TaskBatch(*(x.double() for x in TaskBatch.of(toy_rollouts(n_tasks=2, seed=1), gamma=0.9)))

    def meta_loss(p):
        return reinforce_loss(policy, adapt(policy, p, batch, lr=0.5), valid, per_task=True).sum()

    theta = {k: v.clone().requires_grad_() for k, v in params.items()}
    grads = torch.autograd.grad(meta_loss(theta), list(theta.values()))
    analytic = {k: g for k, g in zip(theta, grads, strict=True)}
    eps = 1e-6
    for key, index in (("0.weight", (1, 0)), ("1.bias", (1,)), ("log_std", (0,))):
        plus = {k: v.clone() for k, v in params.items()}
        minus = {k: v.clone() for k, v in params.items()}
        plus[key][index] += eps
        minus[key][index] -= eps
        numeric = (meta_loss(plus) - meta_loss(minus)) / (2 * eps)
        assert float(analytic[key][index]) == pytest.approx(float(numeric), rel=1e-5, abs=1e-8)


def test_trpo_step_improves_the_surrogate_within_the_kl_radius():
    policy = GaussianPolicy(2, 2, hidden=(8,))
    params = policy.init(generator(0, "t"))
    data = toy_rollouts(n_tasks=1, n_rollouts=16, horizon=10)
    batch = TaskBatch.of(data, gamma=0.9)
    with torch.no_grad():
        old_log_prob = policy.log_prob(params, data.observations, data.actions)
        old = (policy.mean(params, data.observations), params["log_std"])

    def objectives(p):
        ratio = torch.exp(policy.log_prob(p, data.observations, data.actions) - old_log_prob)
        surrogate = -(ratio * batch.advantages).mean()
        return surrogate, policy.kl(old, p, data.observations).mean()

    new, stats = trpo_step(params, objectives, max_kl=0.01)
    assert stats.backtracks >= 0 and stats.surrogate_after < stats.surrogate_before
    surrogate, kl = objectives(new)
    assert 0 < float(kl) <= 0.01 and float(surrogate) == pytest.approx(stats.surrogate_after, rel=1e-5)


def test_sampler_is_deterministic_and_independent_of_workers_and_pinning():
    policy = GaussianPolicy(2, 2)
    params = policy.init(generator(0, "t"))
    tasks = NAVIGATION2D.sample_tasks(3, seed=0)
    with Sampler(NAVIGATION2D, 4, workers=1) as one, Sampler(NAVIGATION2D, 4, workers=2) as two:
        a = one.sample(policy, params, tasks, 2, generator(1, "s"))
        b = two.sample(policy, params, tasks, 2, generator(1, "s"))
    ours = os.sched_getaffinity(0)
    with Sampler(NAVIGATION2D, 4, workers=2, pin_workers=True) as pinned:
        p = pinned.sample(policy, params, tasks, 2, generator(1, "s"))
        assert pinned.cores() == [{core} for core in worker_cores(2, True)]  # one core each, as planned
    assert os.sched_getaffinity(0) == ours  # only the workers are pinned
    with Sampler(NAVIGATION2D, 6) as wider:  # one round instead of two: equal up to float rounding
        c = wider.sample(policy, params, tasks, 2, generator(1, "s"))
    assert a.observations.shape == (3, 2, 100, 2)
    for name in ("observations", "actions", "rewards", "mask"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
        assert torch.equal(getattr(a, name), getattr(p, name)), name
        assert torch.allclose(getattr(a, name), getattr(c, name), atol=1e-5), name
    # the first reward is minus the distance from the first position to the goal
    first = 0.1 * np.clip(a.actions[:, :, 0].numpy(), -1, 1)  # normalised actions, scaled to the velocity
    expected = -np.linalg.norm(first - tasks[:, None, :], axis=-1)
    assert np.allclose(a.rewards[:, :, 0].numpy(), expected, atol=1e-5)


def test_worker_cores_are_one_each_from_the_allowed_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5, 3})
    assert worker_cores(2, True) == worker_cores(2, "auto") == [3, 5]
    assert worker_cores(3, True) == [3, 5, 3]
    assert worker_cores(3, "auto") == [None] * 3  # not exactly as many as the cores: left to the OS
    assert worker_cores(2, False) == [None] * 2
    assert worker_cores(1, True) == [None]  # one worker runs in the calling process


def test_sampler_masks_the_steps_after_an_episode_ends():
    """A policy heading straight for the goal ends its episode there; later steps are masked."""
    policy = GaussianPolicy(2, 2, hidden=(1,))
    params = {k: torch.zeros_like(v) for k, v in policy.init(generator(0, "t")).items()}
    params["1.bias"] = torch.tensor([1.0, 0.0])  # the largest normalised action: 0.1 per step
    params["log_std"] = torch.full((2,), -30.0)  # (almost) deterministic
    tasks = np.array([[0.3, 0.0]])
    with Sampler(NAVIGATION2D, 2) as sampler:
        out = sampler.sample(policy, params, tasks, 2, generator(0, "s"))
    assert out.mask[0, 0].tolist() == [1.0] * 3 + [0.0] * 97
    assert out.returns[0, 0].item() == pytest.approx(-(0.2 + 0.1 + 0.0), abs=1e-5)


def test_short_maml_trpo_improves_the_adapted_return_on_navigation():
    """Can fail: six meta-iterations must lift the mean return after the inner step (Finn et al.'s
    Fig. 5: MAML's navigation policy heads for the goal after one step)."""
    settings = MamlTrpoSettings(iterations=6, meta_batch=10, rollouts=10, inner_lr=0.1, cg_iters=5)
    policy = GaussianPolicy(2, 2)
    with Sampler(NAVIGATION2D, 100) as sampler:
        _, log = train_maml_trpo(policy, sampler, settings, seed=0)
        _, first_two = train_maml_trpo(policy, sampler, MamlTrpoSettings(2, 10, 10, 0.1, cg_iters=5), seed=0)
    after = [r["return_after"] for r in log.rows]
    assert np.mean(after[-2:]) > after[0] + 15, after
    assert all(0 < r["kl"] <= 0.01 for r in log.rows)
    assert first_two.rows == log.rows[:2]  # deterministic with a seed


def test_maml_trpo_on_two_threads_is_deterministic_and_restores_the_thread_count():
    """The meta-update's own thread count: same bits on every run, and the caller's count comes back."""
    settings = MamlTrpoSettings(2, 10, 10, 0.1, cg_iters=5, threads=2)
    policy = GaussianPolicy(2, 2)
    runs, caller = [], torch.get_num_threads()
    with Sampler(NAVIGATION2D, 100) as sampler:
        for _ in range(2):
            runs.append(train_maml_trpo(policy, sampler, settings, seed=0))
            assert torch.get_num_threads() == caller
    (first, first_log), (second, second_log) = runs
    assert first_log.rows == second_log.rows
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_torch_threads_restores_the_count_after_an_error():
    caller = torch.get_num_threads()
    inside = 3 if caller != 3 else 2
    with pytest.raises(RuntimeError, match="inside"), torch_threads(inside):
        assert torch.get_num_threads() == inside
        raise RuntimeError("inside")
    assert torch.get_num_threads() == caller


def test_sb3_policy_reads_out_as_the_same_gaussian_policy():
    from stable_baselines3 import PPO

    from baselines.rl_ppo import TaskSamplingEnv, sb3_params

    env = TaskSamplingEnv(NAVIGATION2D, generator(0, "t"), with_task=True)
    kwargs = {"net_arch": {"pi": [100, 100], "vf": [100, 100]}, "activation_fn": torch.nn.ReLU}
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, device="cpu", policy_kwargs=kwargs)
    policy = GaussianPolicy(4, 2)
    params = sb3_params(model)
    policy.check_params(params)
    obs = torch.randn(5, 4)
    dist = model.policy.get_distribution(obs).distribution
    assert torch.allclose(policy.mean(params, obs), dist.mean, atol=1e-6)
    actions = torch.randn(5, 2)
    assert torch.allclose(policy.log_prob(params, obs, actions), dist.log_prob(actions).sum(-1), atol=1e-5)


def test_task_sampling_env_draws_a_task_per_episode_and_appends_it():
    from baselines.rl_ppo import TaskSamplingEnv

    env = TaskSamplingEnv(NAVIGATION2D, generator(0, "rl/navigation2d/oracle"), with_task=True)
    expected = NAVIGATION2D.draw(2, generator(0, "rl/navigation2d/oracle")).numpy()
    obs, _ = env.reset(seed=0)
    assert np.allclose(obs, [0, 0, *expected[0]])
    for _ in range(99):
        *_, truncated, _ = env.step(np.zeros(2))
        assert not truncated
    *_, truncated, _ = env.step(np.zeros(2))
    assert truncated  # H = 100
    assert np.allclose(env.reset()[0], [0, 0, *expected[1]])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(run=["hopper"]), r"rl\.run: \['hopper'\] have no budget under rl\.families"),
        (lambda r: r["families"].update(hopper=r["families"]["ant_dir"]), r"rl\.families: unknown \['hopper'\]"),
        (lambda r: r["families"]["navigation2d"].update(meta_batch=0), r"rl\.families\.navigation2d\.meta_batch: must"),
        (lambda r: r["evaluate"].update(step_sizes=[]), r"rl\.evaluate\.step_sizes: must list at least one"),
        (lambda r: r["maml_trpo"].update(ls_ratio=1.5), r"rl\.maml_trpo\.ls_ratio: must be in \(0, 1\)"),
        (lambda r: r["maml_trpo"].update(threads=0), r"rl\.maml_trpo\.threads: must be >= 1, got 0"),
        (lambda r: r["sampler"].update(n_envs=5), r"rl\.sampler\.n_envs: must be a multiple of workers \(2\)"),
        (lambda r: r["sampler"].update(pin_workers="yes"), r"rl\.sampler\.pin_workers: got 'yes'; allowed"),
        (lambda r: r["sampler"].update(pin_workers=1), r"rl\.sampler\.pin_workers: got 1; allowed: true, false"),
        (lambda r: r["reml"].update(agent="dqn"), r"rl\.reml\.agent: must be one of \['reml_ppo'"),
        (lambda r: r["families"]["cheetah_dir"].update(return_scale=0), r"rl\.families\.cheetah_dir\.return_scale"),
        (
            lambda r: r["families"]["cheetah_vel"].update(reml_episodes=100),
            r"rl\.families\.cheetah_vel\.reml_episodes: must be a multiple of 30 .*got 100; e\.g\. 90 or 120",
        ),
        (lambda r: r.update(gamma=0), r"rl\.gamma: must be in \(0, 1\]"),
    ],
)
def test_bad_rl_params_are_named(params_copy, edit, message):
    import yaml

    from reml.config import load_params
    from reml.rl.config import rl_config

    data = yaml.safe_load(params_copy.read_text())
    edit(data["rl"])
    params_copy.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=message):
        rl_config(load_params(params_copy))


def test_the_paper_cheetah_dir_run_params_still_load():
    """The README reruns that run with `cp reports/paper_cheetah_dir/params-used.yaml params.yaml`: the file
    must keep up with keys added since (each added with the value that reproduces the run)."""
    from reml.config import load_params
    from reml.rl.config import rl_config

    cfg = rl_config(load_params(Path(__file__).parents[1] / "reports/paper_cheetah_dir/params-used.yaml"))
    assert cfg.run == ("cheetah_dir",) and cfg.family("cheetah_dir").iterations == 60
    assert cfg.maml_trpo.threads == 1  # that run's meta-update ran on one thread


def test_policy_checkpoint_round_trip_and_errors(tmp_path):
    from reml.io import ArtifactError
    from reml.rl.checkpoint import PolicyCheckpoint, load_policy, save_policy

    policy = GaussianPolicy(2, 2)
    ckpt = PolicyCheckpoint("maml_trpo", "navigation2d", policy, policy.init(generator(0, "t")), False, {"a": 1})
    save_policy(tmp_path / "p.safetensors", ckpt)
    back = load_policy(tmp_path / "p.safetensors", "stage", "maml_trpo", "navigation2d")
    assert back.policy == policy and all(torch.equal(back.params[k], v) for k, v in ckpt.params.items())
    with pytest.raises(ArtifactError, match="holds maml_trpo for navigation2d, expected oracle"):
        load_policy(tmp_path / "p.safetensors", "stage", "oracle", "navigation2d")
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="not a valid policy"):
        load_policy(tmp_path / "bad.safetensors", "stage", "maml_trpo", "navigation2d")


def test_evaluation_harness_steps_from_the_episodes_it_scores():
    """Step 0 is the start policy's return on the sampled episodes; a zero step size leaves it unchanged."""
    from reml.rl.harness import adaptation_returns

    policy = GaussianPolicy(2, 2)
    params = policy.init(generator(0, "t"))
    tasks = NAVIGATION2D.sample_tasks(4, 0, stream="test")
    with Sampler(NAVIGATION2D, 8) as sampler:
        curve = adaptation_returns(policy, params, tasks, sampler, (1e-12, 1e-12), 2, 0.99, generator(0, "e"))
        first = sampler.sample(policy, params, tasks, 2, generator(0, "e"))
    assert curve.per_task.shape == (4, 3)
    assert torch.allclose(curve.per_task[:, 0], first.returns.mean(1).double())
    assert torch.isfinite(curve.ci95).all()
    # Each step samples fresh episodes from the same generator; with a ~0 step size the policy stays put,
    # so step s scores exactly the start policy's next draw of episodes.
    rng = generator(0, "e")
    with Sampler(NAVIGATION2D, 8) as sampler:
        draws = [sampler.sample(policy, params, tasks, 2, rng).returns.mean(1).double() for _ in range(3)]
    assert torch.allclose(curve.per_task, torch.stack(draws, dim=1), atol=1e-5)
