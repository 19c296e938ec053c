"""The REML composition MDP as a ``gymnasium.Env`` (shared/docs/reml.md).

An episode builds one network for one task: each step appends a pool layer to the slot being filled
(input, ``depth`` hidden, output). When the last slot is filled the network is trained on the task's
support points (``inner_steps`` of the stated optimiser, through the shared harness) and scored on
the task's *held-out query points*; the reward is a bounded, monotone function of that loss, and the
trained layers are optionally blended back into the pool.

Observation (a flat float32 vector):
- the task: ``support`` (default) encodes the K support points, sorted by x, as ``k_encode`` rows of
  (x, y, present) with zero rows after the K-th, so one policy serves every K <= ``k_encode``;
  ``oracle`` gives the true task parameters instead (as in the thesis; tables label it oracle);
- the network so far: one-hot of the chosen layers, one-hot of the slot being filled, and two
  features computed on the *support points*: ``log(1 + current loss)`` and ``log(1 + output scale)``.
  The current loss of a partial network is the support MSE of its best immediate completion (the
  layers so far followed by the pool's output layer that fits the support points best); before any
  layer it is the loss of predicting 0, and for a complete network its own loss. The output scale
  is the root-mean-square of the last chosen layer's outputs (of x before any layer).

Reward: ``terminal`` gives ``bounded_reward(query loss after inner training)`` at the last step and
0 before. ``dense`` shapes it with the potential φ (Ng et al. 1999): φ = 0 at the start,
``bounded_reward`` of the query loss of the support-chosen completion for a partial network, and the
terminal reward for the finished one; each step pays φ_after − φ_before. The episode return is then
exactly the terminal reward (the sum telescopes), so both modes rank networks identically, and
every step's reward lies in [−1, 1].

Defects of the thesis code that this class rules out by construction:
- invalid actions (wrong kind for the slot, a repeated hidden layer) never enter a network: they are
  masked for ``MaskablePPO`` (:meth:`action_masks`) and, for agents that cannot mask, mapped onto the
  valid sub-pool (``valid[action % len(valid)]``) and counted in ``info["invalid"]``. Every step fills
  one slot, so an episode is exactly ``depth + 2`` steps long (the hard cap);
- the return lies in [0, 1] and never rises with the loss;
- the default task encoding uses only the K support points; ``encoding="oracle"`` must be asked for;
- composing for a meta-test task (``reset(options={"support": (x, y)})``) receives no query points,
  trains nothing and never writes to the pool.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from reml.harness import Adaptation, adapt, mse
from reml.pool import LayerPool
from reml.tasks.sinusoid import SinusoidDistribution

Encoding = Literal["support", "oracle"]
RewardMode = Literal["terminal", "dense"]
N_NETWORK_FEATURES = 2  # log(1 + current loss), log(1 + output scale)


def bounded_reward(loss: float, scale: float) -> float:
    """1 / (1 + loss/scale): 1 for a perfect network, toward 0 as the loss grows; 0 for a diverged one.

    Bounded in [0, 1] and non-increasing in the loss (shared/docs/reml.md, defect 3).
    """
    if not math.isfinite(loss):
        return 0.0
    return 1.0 / (1.0 + max(loss, 0.0) / scale)


class CompositionEnv(gym.Env):
    """Compose a network from ``pool`` for tasks drawn from ``distribution`` (fresh every episode).

    ``k_support`` is the number of support points of a training task, or a list of them to draw from
    uniformly every episode (so a single policy learns to compose for every K it will be tested on).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        pool: LayerPool,
        distribution: SinusoidDistribution,
        depth: int = 3,
        k_support: int | Sequence[int] = 10,
        k_query: int = 10,
        inner_optimizer: Literal["sgd", "adam"] = "adam",
        inner_lr: float = 0.005,
        inner_steps: int = 10,
        encoding: Encoding = "support",
        reward: RewardMode = "terminal",
        reward_scale: float = 1.0,
        write_back: bool = True,
        blend: float = 1.0,
        k_encode: int | None = None,
    ) -> None:
        if depth < 1 or depth > pool.n_hidden:
            raise ValueError(f"depth must be in [1, {pool.n_hidden}] (the pool's hidden layers), got {depth}")
        if encoding not in ("support", "oracle"):
            raise ValueError(f"encoding must be 'support' or 'oracle', got {encoding!r}")
        if reward not in ("terminal", "dense"):
            raise ValueError(f"reward must be 'terminal' or 'dense', got {reward!r}")
        if not reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {reward_scale}")
        self.k_choices = (k_support,) if isinstance(k_support, int) else tuple(k_support)
        if not self.k_choices or min(self.k_choices) < 1:
            raise ValueError(f"k_support must be >= 1, got {k_support}")
        self.k_encode = max(self.k_choices) if k_encode is None else k_encode
        if self.k_encode < max(self.k_choices):
            raise ValueError(f"k_encode = {self.k_encode} is smaller than the largest K, {max(self.k_choices)}")
        self.pool = pool
        self.distribution = distribution
        self.n_slots = depth + 2
        self.k_query = k_query
        self.adaptation = Adaptation(inner_optimizer, inner_lr, inner_steps)
        self.encoding = encoding
        self.reward_mode = reward
        self.reward_scale = reward_scale
        self.write_back, self.blend = write_back, blend
        obs_dim = self._task_dim() + pool.size + self.n_slots + N_NETWORK_FEATURES
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Discrete(pool.size)
        self._chosen: list[int] = []
        self._task: dict[str, Tensor] = {}
        self._evaluating = False
        self._potential = 0.0

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode: a fresh training task, or, with ``options={"support": (x, y)}``, composition
        for a given task from its support points alone (``"task_params"`` too for the oracle encoding)."""
        super().reset(seed=seed)
        self._chosen = []
        self._potential = 0.0
        if options and "support" in options:  # meta-test: compose from the support set alone
            x, y = options["support"]
            if x.shape[0] > self.k_encode:
                raise ValueError(f"K = {x.shape[0]} support points, but this policy encodes at most {self.k_encode}")
            self._task = {"support_x": x, "support_y": y}
            if self.encoding == "oracle":
                if "task_params" not in options:
                    raise ValueError("the oracle encoding needs options['task_params'] to compose for a task")
                self._task["task_params"] = options["task_params"]
            self._evaluating = True
        else:
            k = self.k_choices[int(self.np_random.integers(len(self.k_choices)))]
            rng = torch.Generator().manual_seed(int(self.np_random.integers(0, 2**62)))
            self._task = self._training_task(k, rng)
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
        info: dict[str, Any] = {"invalid": invalid}
        if terminated:
            potential = self._finish(info)
        elif self.reward_mode == "dense" and not self._evaluating:
            potential = self._partial_potential()
        else:
            potential = self._potential
        reward = potential - self._potential if self.reward_mode == "dense" or terminated else 0.0
        self._potential = potential
        return self._observation(), reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """(pool.size,) bool: which layers may fill the current slot (for sb3-contrib MaskablePPO)."""
        mask = np.zeros(self.pool.size, dtype=bool)
        mask[self.valid_actions()] = True
        return mask

    # ------------------------------------------------------------------ internals
    # Subclasses for other task families (reml/classification.py) override the task-specific hooks:
    # loss, _task_dim, _training_task, _partial_potential, _network_features and _observation.

    loss = staticmethod(mse)  # the task loss: inner training, reward, and the network features

    def _task_dim(self) -> int:
        return 3 * self.k_encode if self.encoding == "support" else len(self.distribution.param_names)

    def _training_task(self, k: int, rng: torch.Generator) -> dict[str, Tensor]:
        """One training task with ``k`` support points and ``k_query`` held-out query points."""
        task = self.distribution.sample(1, k, self.k_query, rng)
        return {
            "support_x": task.support_x[0], "support_y": task.support_y[0],
            "query_x": task.query_x[0], "query_y": task.query_y[0], "task_params": task.task_params[0],
        }  # fmt: skip

    def valid_actions(self) -> list[int]:
        slot = len(self._chosen)
        if slot == 0:
            return list(self.pool.indices("input"))
        if slot == self.n_slots - 1:
            return list(self.pool.indices("output"))
        return [i for i in self.pool.indices("hidden") if i not in self._chosen]

    def _finish(self, info: dict[str, Any]) -> float:
        """Train the finished network on the support points, score it on the query points, write back."""
        info["layers"] = list(self._chosen)
        if self._evaluating:  # no query data, no training, no write-back
            return 0.0
        model, params = self.pool.network(self._chosen)
        trained = adapt(model, params, self._task["support_x"], self._task["support_y"], self.adaptation, self.loss)
        with torch.no_grad():
            loss = self.loss(model(trained, self._task["query_x"]), self._task["query_y"]).item()
        self.pool = self.pool.count_chosen(self._chosen)
        if self.write_back:
            self.pool = self.pool.write_back(self._chosen, trained, self.blend)
        info["loss"] = loss
        return bounded_reward(loss, self.reward_scale)

    def _features(self, x: Tensor) -> Tensor:
        """Outputs of the chosen layers (input and hidden; ReLU after each) on points ``x``."""
        h = x
        for index in self._chosen[: self.n_slots - 1]:
            weight, bias = self.pool.layer(index)
            h = torch.relu(torch.nn.functional.linear(h, weight, bias))
        return h

    def _completions(self, x: Tensor) -> Tensor:
        """(n_output, m, 1): the partial network followed by each output layer of the pool."""
        h = self._features(x)
        return torch.einsum("mw,odw->omd", h, self.pool.output_w) + self.pool.output_b[:, None, :]

    def _best_completion(self) -> int:
        """Which output layer (local index) completes the partial network best on the support points."""
        errors = ((self._completions(self._task["support_x"]) - self._task["support_y"]) ** 2).mean(dim=(1, 2))
        return int(errors.argmin())

    def _partial_potential(self) -> float:
        """Dense-reward potential of a partial network: reward of its support-chosen completion's query loss."""
        with torch.no_grad():
            prediction = self._completions(self._task["query_x"])[self._best_completion()]
            return bounded_reward(mse(prediction, self._task["query_y"]).item(), self.reward_scale)

    def _network_features(self) -> Tensor:
        """log(1 + current support loss), log(1 + output scale); see the module docstring."""
        x, y = self._task["support_x"], self._task["support_y"]
        with torch.no_grad():
            if not self._chosen:
                loss, out = (y**2).mean(), x
            elif len(self._chosen) < self.n_slots:
                completions = self._completions(x)
                loss = ((completions - y) ** 2).mean(dim=(1, 2)).min()
                out = self._features(x)
            else:
                model, params = self.pool.network(self._chosen)
                out = model(params, x)
                loss = mse(out, y)
            scale = out.pow(2).mean().sqrt()
        return torch.stack([loss, scale]).clamp(max=1e6).log1p()

    def _observation(self) -> np.ndarray:
        if self.encoding == "support":
            x, y = self._task["support_x"][:, 0], self._task["support_y"][:, 0]
            order = torch.argsort(x)  # a fixed order, so the encoding does not depend on sampling order
            task = torch.zeros(self.k_encode, 3)
            task[: len(x)] = torch.stack([x[order], y[order], torch.ones(len(x))], dim=1)
            task = task.flatten()
        else:
            task = self._task["task_params"]
        chosen = torch.zeros(self.pool.size)
        chosen[self._chosen] = 1.0
        slot = torch.zeros(self.n_slots)
        slot[min(len(self._chosen), self.n_slots - 1)] = 1.0
        return torch.cat([task, chosen, slot, self._network_features()]).numpy().astype(np.float32)
