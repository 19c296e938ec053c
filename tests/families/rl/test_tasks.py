"""Meta-RL task families: rewards by hand, from the simulator's own state for locomotion, seeded task
streams, and MuJoCo's warnings."""

import subprocess
import sys

import numpy as np
import pytest

from reml.families.rl import RL_FAMILIES, rl_family
from reml.families.rl.locomotion import (
    ANT_DIR,
    ANT_VEL,
    CHEETAH_DIR,
    CHEETAH_VEL,
    KNOWN_MUJOCO_WARNING,
    forward_mujoco_warning,
)
from reml.families.rl.navigation import NAVIGATION2D


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


def test_frame_skip_sets_the_control_interval():
    """v5's default steps 0.05 s per action; rllab's intervals (Finn's) are frame_skip 1 (HalfCheetah,
    0.01 s) and 2 (Ant, 0.02 s); a family without a simulator refuses the setting."""
    assert rl_family("cheetah_dir").make_env().unwrapped.dt == pytest.approx(0.05)
    assert rl_family("cheetah_dir", 5).make_env().unwrapped.dt == pytest.approx(0.05)
    assert rl_family("cheetah_vel", 1).make_env().unwrapped.dt == pytest.approx(0.01)
    assert rl_family("ant_dir", 2).make_env().unwrapped.dt == pytest.approx(0.02)
    assert rl_family("ant_vel", 2).frame_skip == 2 and rl_family("ant_vel").frame_skip is None
    with pytest.raises(ValueError, match="navigation2d is not simulated by MuJoCo: frame_skip must be None"):
        rl_family("navigation2d", 1)
    with pytest.raises(ValueError, match="frame_skip must be a positive integer or None, got 0"):
        rl_family("cheetah_dir", 0)


@pytest.mark.parametrize(
    ("family", "frame_skip"),
    [(CHEETAH_VEL, None), (CHEETAH_DIR, None), (ANT_VEL, None), (ANT_DIR, None), (CHEETAH_DIR, 1), (ANT_VEL, 2)],
    ids=lambda v: v.name if hasattr(v, "name") else f"frame_skip={v}",
)
def test_locomotion_reward_from_the_simulator_state_by_hand(family, frame_skip):
    """The reward recomputed from the body's own positions (x velocity = dx / dt), the clipped action
    and, for Ant, the clipped external contact forces: MAML's formulas from the protocol page; at v5's
    and at rllab's control intervals."""
    family = family.with_frame_skip(frame_skip)
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
    ours = "from reml.families.rl.locomotion import CHEETAH_DIR, ANT_DIR; CHEETAH_DIR.make_env(); ANT_DIR.make_env()"
    assert "settotalmass" not in _fresh_python(ours)
    forward_mujoco_warning(KNOWN_MUJOCO_WARNING + ": scale the masses")  # dropped: no warning
    with pytest.warns(RuntimeWarning, match="MuJoCo: Nan, Inf or huge value in QACC"):
        forward_mujoco_warning("Nan, Inf or huge value in QACC at DOF 0.")
    kept = "import mujoco; mujoco.set_mju_user_warning(print)\n"
    kept += "from reml.families.rl.locomotion import CHEETAH_DIR; CHEETAH_DIR.make_env()\n"
    kept += "assert mujoco.get_mju_user_warning() is print"
    assert KNOWN_MUJOCO_WARNING in _fresh_python(kept)  # a caller's own handler is left in place
