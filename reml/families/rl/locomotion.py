"""MuJoCo locomotion task families (Finn et al. 2017, Sec. 5.3) on gymnasium's v5 environments.

The reward is MAML's, recomputed from ``info["x_velocity"]`` and the (clipped) action, so it does not
depend on how gymnasium weighs its own terms (see ../shared/docs/protocol.md):

- ``cheetah_vel``: v* ~ U[0, 2], r = -|v_x - v*| - 0.05 ||a||^2;
- ``cheetah_dir``: d in {-1, +1}, r = d v_x - 0.05 ||a||^2;
- ``ant_vel``: v* ~ U[0, 3], r = -|v_x - v*| + 1.0 - 0.005 ||a||^2 - contact + 0.05;
- ``ant_dir``: d in {-1, +1}, r = d v_x - 0.005 ||a||^2 - contact + 0.05,

where contact = 5e-4 ||clip(cfrc_ext, -1, 1)||^2 (Ant-v5's own contact cost) and 0.05 is the survival
bonus. Ant episodes end when the torso height leaves [0.2, 1.0] (Ant-v5's health check). H = 200.
``frame_skip`` (rl.families.<name>.frame_skip) sets the control interval: v5's default 5 steps the
0.01 s model 0.05 s per action; rllab's 0.01 s (HalfCheetah) and 0.02 s (Ant) are frame_skip 1 and 2
(rllab's Ant model had a 0.02 s timestep and frame_skip 1: the interval matches, not the integrator).
Everything runs headless: nothing is rendered.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from reml.families.rl.tasks import RLFamily, check_task, direction, uniform_task

HORIZON = 200
CHEETAH_CTRL = 0.05
ANT_CTRL = 0.005
ANT_SURVIVE = 0.05
ANT_VEL_BONUS = 1.0  # MAML's ant velocity reward adds 1.0 to -|v_x - v*|


class LocomotionEnv(gym.Wrapper):
    """A v5 MuJoCo body whose reward is a task's: ``set_task([v*])`` or ``set_task([d])`` before ``reset``.

    Actions are clipped to the action space before they reach the simulator (as in MAML's rllab
    environments), and the control cost is computed on the clipped action.
    """

    def __init__(self, body: gym.Env, kind: str, param_name: str) -> None:
        super().__init__(body)
        if kind not in ("vel", "dir"):
            raise ValueError(f"kind must be 'vel' or 'dir', got {kind!r}")
        self.kind = kind
        self.param_names = (param_name,)
        self._target = 1.0
        self._ant = isinstance(body, AntEnv)

    def set_task(self, task: np.ndarray) -> None:
        self._target = float(check_task(task, self.param_names)[0])

    def task_reward(self, x_velocity: float, action: np.ndarray, contact_cost: float) -> float:
        """The family's reward for one step, from the forward velocity, the clipped action and (Ant) the
        contact cost."""
        if self.kind == "vel":
            forward = -abs(x_velocity - self._target) + (ANT_VEL_BONUS if self._ant else 0.0)
        else:
            forward = self._target * x_velocity
        if self._ant:
            return forward - ANT_CTRL * float(np.sum(np.square(action))) - contact_cost + ANT_SURVIVE
        return forward - CHEETAH_CTRL * float(np.sum(np.square(action)))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        space = self.action_space
        clipped = np.clip(np.asarray(action, dtype=np.float64), space.low, space.high)
        obs, _, terminated, truncated, info = self.env.step(clipped)
        contact = -float(info["reward_contact"]) if self._ant else 0.0
        return obs, self.task_reward(float(info["x_velocity"]), clipped, contact), terminated, truncated, info


# gymnasium's half_cheetah.xml sets ``settotalmass``, which MuJoCo 4 deprecates but still applies (the
# masses are the same); its compiler warns once per body built, hundreds of lines in a run's log.
KNOWN_MUJOCO_WARNING = "compiler attribute 'settotalmass' is deprecated"


def forward_mujoco_warning(message: str) -> None:
    """MuJoCo's warning handler in this package: drops the known ``settotalmass`` deprecation and
    raises every other MuJoCo warning (an unstable simulation, say) as a Python ``RuntimeWarning``."""
    if not message.startswith(KNOWN_MUJOCO_WARNING):
        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


def _install_warning_handler() -> None:
    """Route MuJoCo's warnings through :func:`forward_mujoco_warning`, unless the caller installed a
    handler of their own. Called where bodies are built, so worker processes get it too."""
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(forward_mujoco_warning)


def _skip(frame_skip: int | None) -> dict[str, int]:
    """The v5 constructor's ``frame_skip`` argument (none: the environment's default, 5)."""
    return {} if frame_skip is None else {"frame_skip": frame_skip}


def _cheetah(kind: str, param: str) -> Callable[[int | None], gym.Env]:
    def make(frame_skip: int | None) -> gym.Env:
        _install_warning_handler()
        return LocomotionEnv(HalfCheetahEnv(ctrl_cost_weight=CHEETAH_CTRL, **_skip(frame_skip)), kind, param)

    return make


def _ant(kind: str, param: str) -> Callable[[int | None], gym.Env]:
    def make(frame_skip: int | None) -> gym.Env:
        _install_warning_handler()
        body = AntEnv(ctrl_cost_weight=ANT_CTRL, healthy_reward=ANT_SURVIVE, **_skip(frame_skip))
        return LocomotionEnv(body, kind, param)

    return make


def _family(name: str, param: str, make: Callable, draw: Callable) -> RLFamily:
    return RLFamily(name, (param,), HORIZON, make, draw, simulated=True)


CHEETAH_VEL = _family("cheetah_vel", "velocity", _cheetah("vel", "velocity"), uniform_task(0.0, 2.0))
CHEETAH_DIR = _family("cheetah_dir", "direction", _cheetah("dir", "direction"), direction)
ANT_VEL = _family("ant_vel", "velocity", _ant("vel", "velocity"), uniform_task(0.0, 3.0))
ANT_DIR = _family("ant_dir", "direction", _ant("dir", "direction"), direction)
