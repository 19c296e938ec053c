"""The REML composition MDP as a ``gymnasium.Env`` (shared/docs/reml.md).

An episode builds one network for one task: each step appends a pool layer to the slot being filled
(input, ``depth`` hidden, output). When the last slot is filled the network is trained on the task's
support points (``inner_steps`` of the stated optimiser, through the shared harness) and scored on
the task's *held-out query points*; the reward is a bounded, monotone function of that loss, and the
trained layers are optionally blended back into the pool.

Defects of the thesis code that this class rules out by construction:
- invalid actions (wrong kind for the slot, a repeated hidden layer) never enter a network: they are
  masked for ``MaskablePPO`` (:meth:`action_masks`) and, for agents that cannot mask, mapped onto the
  valid sub-pool (``valid[action % len(valid)]``) and counted in ``info["invalid"]``. Every step fills
  one slot, so an episode is exactly ``depth + 2`` steps long (the hard cap);
- the reward lies in (0, 1] and never rises with the loss;
- the default task encoding uses only the K support points; ``encoding="oracle"`` (true task
  parameters, as in the thesis) must be asked for;
- composing for a meta-test task (``reset(options={"support": (x, y)})``) receives no query points,
  trains nothing and never writes to the pool.

Not yet in the observation (the issue asks for them): the current loss and the output scale of the
partial network; only the support points and the layers chosen so far are encoded.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from reml.harness import Adaptation, adapt, mse
from reml.pool import LayerPool
from reml.tasks.sinusoid import SinusoidDistribution

Encoding = Literal["support", "oracle"]


def bounded_reward(loss: float, scale: float) -> float:
    """1 / (1 + loss/scale): 1 for a perfect network, toward 0 as the loss grows; 0 for a diverged one.

    Bounded in [0, 1] and non-increasing in the loss (shared/docs/reml.md, defect 3).
    """
    if not math.isfinite(loss):
        return 0.0
    return 1.0 / (1.0 + max(loss, 0.0) / scale)


class CompositionEnv(gym.Env):
    """Compose a network from ``pool`` for tasks drawn from ``distribution`` (fresh every episode)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        pool: LayerPool,
        distribution: SinusoidDistribution,
        depth: int = 3,
        k_support: int = 10,
        k_query: int = 10,
        inner_optimizer: Literal["sgd", "adam"] = "adam",
        inner_lr: float = 0.005,
        inner_steps: int = 10,
        encoding: Encoding = "support",
        reward_scale: float = 1.0,
        write_back: bool = True,
        blend: float = 1.0,
    ) -> None:
        if depth < 1 or depth > pool.n_hidden:
            raise ValueError(f"depth must be in [1, {pool.n_hidden}] (the pool's hidden layers), got {depth}")
        if encoding not in ("support", "oracle"):
            raise ValueError(f"encoding must be 'support' or 'oracle', got {encoding!r}")
        if not reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {reward_scale}")
        self.pool = pool
        self.distribution = distribution
        self.n_slots = depth + 2
        self.k_support, self.k_query = k_support, k_query
        self.adaptation = Adaptation(inner_optimizer, inner_lr, inner_steps)
        self.encoding = encoding
        self.reward_scale = reward_scale
        self.write_back, self.blend = write_back, blend
        task_dim = 2 * k_support if encoding == "support" else len(distribution.param_names)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (task_dim + pool.size + self.n_slots,), np.float32)
        self.action_space = gym.spaces.Discrete(pool.size)
        self._chosen: list[int] = []
        self._task: dict[str, Tensor] = {}
        self._evaluating = False

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._chosen = []
        if options and "support" in options:  # meta-test: compose from the support set alone
            x, y = options["support"]
            self._task = {"support_x": x, "support_y": y}
            self._evaluating = True
        else:
            rng = torch.Generator().manual_seed(int(self.np_random.integers(0, 2**62)))
            task = self.distribution.sample(1, self.k_support, self.k_query, rng)
            self._task = {
                "support_x": task.support_x[0], "support_y": task.support_y[0],
                "query_x": task.query_x[0], "query_y": task.query_y[0], "task_params": task.task_params[0],
            }  # fmt: skip
            self._evaluating = False
        return self._observation(), {}

    def step(self, action: int):
        valid = self.valid_actions()
        action = int(action)
        invalid = action not in valid
        if invalid:
            action = valid[action % len(valid)]
        self._chosen.append(action)
        terminated = len(self._chosen) == self.n_slots
        reward, info = 0.0, {"invalid": invalid}
        if terminated:
            reward, info = self._finish(info)
        return self._observation(), reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """(pool.size,) bool: which layers may fill the current slot (for sb3-contrib MaskablePPO)."""
        mask = np.zeros(self.pool.size, dtype=bool)
        mask[self.valid_actions()] = True
        return mask

    # ------------------------------------------------------------------ internals

    def valid_actions(self) -> list[int]:
        slot = len(self._chosen)
        if slot == 0:
            return list(self.pool.indices("input"))
        if slot == self.n_slots - 1:
            return list(self.pool.indices("output"))
        return [i for i in self.pool.indices("hidden") if i not in self._chosen]

    def _finish(self, info: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        info["layers"] = list(self._chosen)
        if self._evaluating:  # no query data, no training, no write-back
            return 0.0, info
        model, params = self.pool.network(self._chosen)
        trained = adapt(model, params, self._task["support_x"], self._task["support_y"], self.adaptation)
        with torch.no_grad():
            loss = mse(model(trained, self._task["query_x"]), self._task["query_y"]).item()
        self.pool = self.pool.count_chosen(self._chosen)
        if self.write_back:
            self.pool = self.pool.write_back(self._chosen, trained, self.blend)
        info["loss"] = loss
        return bounded_reward(loss, self.reward_scale), info

    def _observation(self) -> np.ndarray:
        if self.encoding == "support":
            x, y = self._task["support_x"][:, 0], self._task["support_y"][:, 0]
            order = torch.argsort(x)  # a fixed order, so the encoding does not depend on sampling order
            task = torch.cat([x[order], y[order]])
        else:
            task = self._task["task_params"]
        chosen = torch.zeros(self.pool.size)
        chosen[self._chosen] = 1.0
        slot = torch.zeros(self.n_slots)
        slot[min(len(self._chosen), self.n_slots - 1)] = 1.0
        return torch.cat([task, chosen, slot]).numpy().astype(np.float32)
