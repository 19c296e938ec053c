"""2D navigation (Finn et al. 2017, Sec. 5.3): a point mass starts at the origin and must reach a goal.

Observation: the position (2,). Action: a velocity, clipped to [-0.1, 0.1]^2. Reward: minus the
distance to the goal after the move. The episode ends within 0.01 of the goal, or at H = 100.
Task: the goal ~ U[-0.5, 0.5]^2.

The action space is normalised to [-1, 1]^2 and scaled to the velocity box, as Finn et al.'s code does
(``normalize(PointEnvRandGoal())`` in cbfinn/maml_rl, rllab's ``NormalizedEnv``): a policy acting in
[-0.1, 0.1]^2 directly with a unit-variance Gaussian would be saturated at the clip almost always (a
bang-bang controller that cannot settle on the goal), which is not the problem MAML was scored on.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from reml.families.rl.tasks import RLFamily, check_task, uniform_task

MAX_SPEED = 0.1  # per step, on each axis: the velocity is MAX_SPEED * clip(action, -1, 1)
GOAL_RADIUS = 0.01  # the episode ends this close to the goal
PARAM_NAMES = ("goal_x", "goal_y")


class Navigation2DEnv(gym.Env):
    """The point mass; ``set_task([goal_x, goal_y])`` before ``reset``."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)  # scaled to +-MAX_SPEED in step
        self._goal = np.zeros(2)
        self._position = np.zeros(2)

    def set_task(self, task: np.ndarray) -> None:
        self._goal = check_task(task, PARAM_NAMES)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._position = np.zeros(2)
        return self._position.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        velocity = MAX_SPEED * np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self._position = self._position + velocity
        distance = math.hypot(*(self._position - self._goal))  # not np.linalg.norm: its BLAS kernel varies by CPU
        return self._position.astype(np.float32), -distance, distance < GOAL_RADIUS, False, {"distance": distance}


NAVIGATION2D = RLFamily(
    name="navigation2d",
    param_names=PARAM_NAMES,
    horizon=100,
    build=lambda frame_skip: Navigation2DEnv(),  # not simulated: frame_skip is always None
    draw=uniform_task(-0.5, 0.5, dims=2),
)
