"""The REML composition MDP as a ``gymnasium.Env`` skeleton (shared/docs/reml.md), for every family.

An episode builds one network for one task: each step appends a pool layer to the slot being filled
(input, hidden ones, output). What the families share lives here:

- the slots, the action masks (:meth:`CompositionEnv.action_masks`, for ``MaskablePPO``) and the
  remapping of invalid choices for agents that cannot mask (``valid[action % len(valid)]``, counted in
  ``info["invalid"]``): a layer of the wrong kind for the slot, or a hidden layer already chosen,
  never enters a network, and every step fills one slot, so an episode is exactly ``n_slots`` steps
  long (the hard cap);
- the observation: the family's task encoding, a one-hot of the chosen layers, a one-hot of the slot
  being filled, and the family's features of the network so far;
- the split between training episodes (``reset()``: the family draws a task; at the last step the
  network is trained, scored and written back) and meta-test composition (``reset(options=...)``:
  the family reads a given task's support data only; nothing is trained, scored or written back).

:class:`SupervisedCompositionEnv` adds what regression and classification share: training tasks from
a :class:`~reml.core.tasks.TaskDistribution` with K drawn every episode, and the terminal step that
trains the network on the support examples through the shared harness, scores it on the held-out
query examples, and rewards ``bounded_reward(query loss)``. Two options change how REML learns (the
thesis's rules stay the defaults): ``pool_update="meta_gradient"`` (Alet et al. 2018, "Modular
meta-learning") replaces the write-back of the trained layers by one Adam step of the chosen layers on the
gradient of the query loss after the inner training (first-order by default: the gradient at the adapted
weights), each pool layer keeping its own Adam moments, stepped only when it is chosen;
``relative_reward=True`` rewards ``ref / (ref + loss)`` where ``ref`` is the query loss of predicting zero on
the same task (a sigmoid of log(ref / loss)), so that an easy task and a hard one pay alike for the same
relative gain. Each family's REML (``reml.families.<family>
.reml``) is a subclass with its hooks: task encoding, network features, and how layers make a network.

Device: an environment computes on its pool's device (:attr:`CompositionEnv.device`): the task data
(drawn on the CPU, from CPU generators, then moved there), the observation's parts, the inner training
of the finished network and the write-back. SB3 takes numpy observations and float rewards, so each
step hands one observation (and its reward) back to the host: that one transfer per environment step
is unavoidable; the inner training itself runs without host syncs until the query loss is read once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor
from torch.func import grad_and_value

from reml.core.harness import Adaptation, Loss, Model, adapt
from reml.core.nets import Weights
from reml.core.tasks import TaskDistribution
from reml.methods.reml.pool import LayerPool

POOL_UPDATES = ("overwrite", "meta_gradient")


def relative_reward(loss: float, reference: float) -> float:
    """``reference / (reference + loss)`` in [0, 1] (= sigmoid(log(reference / loss))): 1/2 for a network
    as good as the reference, monotone decreasing in ``loss``, 0 for a non-finite loss."""
    if not math.isfinite(loss) or not reference > 0:
        return 0.0
    return reference / (reference + loss)


def bounded_reward(loss: float, scale: float) -> float:
    """1 / (1 + loss/scale): 1 for a perfect network, toward 0 as the loss grows; 0 for a diverged one.

    Bounded in [0, 1] and non-increasing in the loss (shared/docs/reml.md, defect 3).
    """
    if not math.isfinite(loss):
        return 0.0
    return 1.0 / (1.0 + max(loss, 0.0) / scale)


class CompositionEnv(gym.Env, ABC):
    """Compose a network of ``n_slots`` layers from ``pool``, one slot per step.

    Subclasses provide :meth:`_task_dim` and :meth:`_task_encoding` (the task part of the observation),
    ``n_features`` and :meth:`_network_features`, :meth:`_begin_training_task`, :meth:`_begin_test_task`
    and :meth:`_finish` (the reward of a finished training network), and may override
    :meth:`_step_reward` (a reward before the last step) and :meth:`network_params`.
    """

    metadata = {"render_modes": []}
    test_option = "support"  # the reset option that starts a meta-test composition
    n_features = 0  # features of the network so far in the observation

    def __init__(self, pool: LayerPool, n_slots: int) -> None:
        self.pool = pool
        self.n_slots = n_slots
        obs_dim = self._task_dim() + pool.size + n_slots + self.n_features
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Discrete(pool.size)
        self._chosen: list[int] = []
        self._evaluating = False

    @property
    def device(self) -> torch.device:
        """Where this environment computes: its pool's device."""
        return self.pool.device

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode: a fresh training task, or, with ``options={test_option: ...}``, composition
        for a given meta-test task."""
        super().reset(seed=seed)
        self._chosen = []
        self._evaluating = bool(options) and self.test_option in options
        if self._evaluating:
            self._begin_test_task(options)
        else:
            self._begin_training_task()
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
            info["layers"] = list(self._chosen)
        if self._evaluating:
            reward = 0.0
        elif terminated:
            reward = self._finish(info)
        else:
            reward = self._step_reward()
        return self._observation(), reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """(pool.size,) bool: which layers may fill the current slot (for sb3-contrib MaskablePPO)."""
        mask = np.zeros(self.pool.size, dtype=bool)
        mask[self.valid_actions()] = True
        return mask

    def valid_actions(self) -> list[int]:
        slot = len(self._chosen)
        if slot == 0:
            return list(self.pool.indices("input"))
        if slot == self.n_slots - 1:
            return list(self.pool.indices("output"))
        return [i for i in self.pool.indices("hidden") if i not in self._chosen]

    def network_params(self, layers: Sequence[int]) -> Weights:
        """The parameters of the network of ``layers`` (copies of the pool's)."""
        return self.pool.network(layers)

    # ------------------------------------------------------------------ hooks

    @abstractmethod
    def _task_dim(self) -> int:
        """Length of the task encoding."""

    @abstractmethod
    def _task_encoding(self) -> Tensor:
        """(``_task_dim()``,) the current task as the agent sees it."""

    def _network_features(self) -> Tensor:
        """(``n_features``,) features of the network chosen so far (none by default)."""
        return torch.zeros(0, device=self.device)

    @abstractmethod
    def _begin_training_task(self) -> None:
        """Draw a training task from ``self.np_random``."""

    @abstractmethod
    def _begin_test_task(self, options: dict[str, Any]) -> None:
        """Take a meta-test task from ``reset``'s options (its support data only)."""

    @abstractmethod
    def _finish(self, info: dict[str, Any]) -> float:
        """Train, score and write back the finished network of a training episode; return its reward."""

    def _step_reward(self) -> float:
        """The reward of a training step before the last (0: the reward is terminal)."""
        return 0.0

    def _observation(self) -> np.ndarray:
        """Built on the device, copied to the host once (SB3 reads numpy)."""
        chosen = torch.zeros(self.pool.size, device=self.device)
        chosen[self._chosen] = 1.0
        slot = torch.zeros(self.n_slots, device=self.device)
        slot[min(len(self._chosen), self.n_slots - 1)] = 1.0
        parts = [self._task_encoding(), chosen, slot, self._network_features()]
        return torch.cat(parts).cpu().numpy().astype(np.float32)


class SupervisedCompositionEnv(CompositionEnv):
    """Compose a network for tasks drawn from ``distribution`` (fresh every episode), train it on their
    support examples, reward its query loss.

    ``k_support`` is the number of support examples of a training task, or a list of them to draw from
    uniformly every episode (so a single policy learns to compose for every K it will be tested on).
    ``model(n_slots)`` is the functional network a full composition makes. Meta-test composition is
    ``reset(options={"support": (x, y)})``: it receives no query examples, trains nothing and never
    writes to the pool.
    """

    def __init__(
        self,
        pool: LayerPool,
        n_slots: int,
        distribution: TaskDistribution,
        model: Model,
        loss: Loss,
        k_support: int | Sequence[int],
        k_query: int,
        adaptation: Adaptation,
        reward_scale: float,
        write_back: bool,
        blend: float,
        k_encode: int | None = None,
        pool_update: str = "overwrite",
        meta_lr: float = 0.001,
        first_order: bool = True,
        relative_reward: bool = False,
    ) -> None:
        if not reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {reward_scale}")
        if pool_update not in POOL_UPDATES:
            raise ValueError(f"pool_update must be one of {list(POOL_UPDATES)}, got {pool_update!r}")
        if not (meta_lr > 0 and math.isfinite(meta_lr)):
            raise ValueError(f"meta_lr must be finite and > 0, got {meta_lr}")
        self.pool_update, self.meta_lr, self.first_order = pool_update, meta_lr, first_order
        self.relative_reward = relative_reward
        self._moments: dict[tuple[int, str], tuple[Tensor, Tensor, int]] = {}  # meta_gradient: Adam per layer
        self.k_choices = (k_support,) if isinstance(k_support, int) else tuple(k_support)
        if not self.k_choices or min(self.k_choices) < 1:
            raise ValueError(f"k_support must be >= 1, got {k_support}")
        self.k_encode = max(self.k_choices) if k_encode is None else k_encode
        if self.k_encode < max(self.k_choices):
            raise ValueError(f"k_encode = {self.k_encode} is smaller than the largest K, {max(self.k_choices)}")
        self.distribution = distribution
        self.model, self.loss = model, loss
        self.k_query = k_query
        self.adaptation = adaptation
        self.reward_scale = reward_scale
        self.write_back, self.blend = write_back, blend
        self._task: dict[str, Tensor] = {}
        super().__init__(pool, n_slots)

    def _begin_training_task(self) -> None:
        """A training task with K support and ``k_query`` held-out query examples, K drawn from ``k_choices``;
        drawn on the CPU, then moved to the device."""
        k = self.k_choices[int(self.np_random.integers(len(self.k_choices)))]
        rng = torch.Generator().manual_seed(int(self.np_random.integers(0, 2**62)))
        task = self.distribution.sample(1, k, self.k_query, rng)
        drawn = {"support_x": task.support_x, "support_y": task.support_y, "query_x": task.query_x,
                 "query_y": task.query_y, "task_params": task.task_params}  # fmt: skip
        self._task = {name: t[0].to(self.device) for name, t in drawn.items()}

    def _begin_test_task(self, options: dict[str, Any]) -> None:
        x, y = options["support"]
        if x.shape[0] > self.k_encode:
            raise ValueError(f"{x.shape[0]} support examples, but this policy encodes at most {self.k_encode}")
        self._task = {"support_x": x.to(self.device), "support_y": y.to(self.device)}

    def _finish(self, info: dict[str, Any]) -> float:
        """Train the finished network on the support examples, score it on the query examples, update the
        pool (write-back or meta-gradient step). The query loss is the one value read back to the host (SB3's
        reward)."""
        params = self.network_params(self._chosen)
        task = self._task

        def query_loss(p: Weights) -> Tensor:
            trained = adapt(self.model, p, task["support_x"], task["support_y"], self.adaptation, self.loss,
                            first_order=self.first_order)  # fmt: skip
            return self.loss(self.model(trained, task["query_x"]), task["query_y"])

        self.pool = self.pool.count_chosen(self._chosen)
        if self.pool_update == "meta_gradient":
            grads, value = grad_and_value(query_loss)(params)
            loss = value.item()
            if self.write_back and math.isfinite(loss):
                self.pool = self.pool.write_back(self._chosen, self._adam_step(params, grads), 1.0)
        else:
            trained = adapt(self.model, params, task["support_x"], task["support_y"], self.adaptation, self.loss)
            with torch.no_grad():
                loss = self.loss(self.model(trained, task["query_x"]), task["query_y"]).item()
            if self.write_back and math.isfinite(loss):  # a diverged network would poison the pool (NaN/inf)
                self.pool = self.pool.write_back(self._chosen, trained, self.blend)
        info["loss"] = loss
        if self.relative_reward:
            with torch.no_grad():
                reference = self.loss(torch.zeros_like(task["query_y"]), task["query_y"]).item()
            return relative_reward(loss, reference)
        return bounded_reward(loss, self.reward_scale)

    def _adam_step(self, params: Weights, grads: Weights, betas: tuple[float, float] = (0.9, 0.999),
                   eps: float = 1e-8) -> Weights:  # fmt: skip
        """One Adam step (Kingma & Ba 2015, bias-corrected) of the chosen layers on ``grads``; each pool
        layer's moments advance only when it is chosen. Keys are the network's (``"{slot}.{name}"``)."""
        b1, b2 = betas
        out = {}
        for key, value in params.items():
            slot, name = key.split(".", 1)
            index = (self._chosen[int(slot)], name)
            m, v, t = self._moments.get(index, (torch.zeros_like(value), torch.zeros_like(value), 0))
            g = grads[key].detach()
            m, v, t = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2, t + 1
            self._moments[index] = (m, v, t)
            out[key] = value - self.meta_lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        return out
