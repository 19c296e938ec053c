"""REML for meta-RL: a PPO agent composes each task's Gaussian policy from a pool of policy layers
(shared/docs/reml.md; the composition MDP of :mod:`reml.compose_env`, for policies).

The pool (:class:`reml.pool.LayerPool`) holds input layers (obs -> width), hidden layers (width ->
width) and output layers (width -> action mean), plus one log standard deviation per action dimension
shared by the pool. A policy is input, one hidden, output: obs -> 100 -> 100 -> action mean, Finn's
architecture, i.e. exactly the parameters of :class:`reml.rl.policy.GaussianPolicy`.

An episode composes one policy for one task:

- ``reset``: a training task is drawn afresh, and its *first rollouts* are run: ``rollouts`` episodes
  with actions drawn from N(0, I), a probe that ignores the observation and is the same for every task.
  The task is encoded from these rollouts only (:func:`encode_task`);
- three steps choose the input, the hidden and the output layer. The observation is the task encoding,
  a one-hot of the chosen layers and a one-hot of the slot being filled. Invalid choices (a layer of the
  wrong kind for the slot) are masked for ``MaskablePPO`` (:meth:`RLCompositionEnv.action_masks`) and,
  for agents that cannot mask, mapped onto the valid ones (``valid[action % len(valid)]``) and counted
  in ``info["invalid"]``; an episode is exactly three steps;
- at the last step the composed policy is trained by ``inner_steps`` REINFORCE steps (step size
  ``inner_lr``, linear feature baseline: the test-time fine-tuning of every method), each on fresh
  rollouts of the current policy, and its return G is then measured on fresh rollouts. The reward is
  ``sigmoid((G - G_probe) / return_scale)``: bounded in (0, 1), increasing in G (0 before the last
  step). The trained layers and log std are blended back into the pool (``blend``) only when the inner
  steps did not lower the return: G is at least the mean return of the first inner step's own rollouts
  (the composed policy before training; no extra sampling). Otherwise nothing is written and
  ``info["rejected"]`` says so (the reward is still that of G). Without this check one bad step was
  written back whole (``blend`` 1) and wrecked the layers every later policy is built from: on the
  paper navigation profile the pool collapsed at composition ~3,200 and never recovered. An inner step
  that leaves a weight non-finite scores 0, writes nothing and sets ``info["diverged"]``.

At meta-test (:meth:`RLComposer.compose`) the same probe runs on each test task, the agent composes
deterministically from the encoding, and the pool is never modified; the composed policies then go
through the one RL harness like every other method. So REML's "0 steps" row has seen one batch of the
task's episodes (the probe), as the other methods' "1 step" row has.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from torch import Tensor

from reml.agents import make_agent
from reml.config import PpoConfig, from_dict, to_dict
from reml.io import ArtifactError, atomic_path, pack_metadata, require_file, unpack_metadata
from reml.nets import Params
from reml.pool import LayerPool
from reml.rl.config import N_SLOTS
from reml.rl.pg import TaskBatch, adapt
from reml.rl.policy import LOG_STD, GaussianPolicy
from reml.rl.sampler import Rollouts, Sampler
from reml.tasks.rl import RLFamily

ENCODING_CLIP = 10.0
_POOL_TENSORS = ("input_w", "input_b", "hidden_w", "hidden_b", "output_w", "output_b", "chosen", "trained")


@dataclass(frozen=True)
class ComposeSettings:
    """What the composition MDP needs (the ``rl.reml`` params and the family's budgets)."""

    rollouts: int  # episodes per batch: probe, each inner step, and the return after training
    inner_lr: float
    inner_steps: int
    gamma: float
    return_scale: float
    blend: float


def encoding_dim(obs_dim: int, act_dim: int) -> int:
    return 2 * (obs_dim + act_dim) + 1


def encode_task(rollouts: Rollouts) -> Tensor:
    """(T, E) encodings of T tasks from their probe rollouts: the ridge regression of the reward on the
    standardised features [o, o², a, a²] over the steps taken, divided by the rewards' standard
    deviation (so it reads like a correlation: which way of moving pays on this task), and the mean
    reward over that standard deviation; clipped to ±10. ``E = 2 (obs_dim + act_dim) + 1``."""
    o = rollouts.observations.double().clamp(-10, 10)
    a = rollouts.actions.double().clamp(-10, 10)
    features = torch.cat([o, o**2, a, a**2], dim=-1).flatten(1, 2)  # (T, R*H, F)
    weights = rollouts.mask.double().flatten(1)[..., None]  # (T, R*H, 1)
    rewards = rollouts.rewards.double().flatten(1)[..., None]
    n = weights.sum(dim=1, keepdim=True)
    f_mean = (features * weights).sum(dim=1, keepdim=True) / n
    f_std = (((features - f_mean) ** 2 * weights).sum(dim=1, keepdim=True) / n).sqrt() + 1e-8
    z = (features - f_mean) / f_std * weights
    r_mean = (rewards * weights).sum(dim=1, keepdim=True) / n
    r_std = (((rewards - r_mean) ** 2 * weights).sum(dim=1, keepdim=True) / n).sqrt() + 1e-8
    y = (rewards - r_mean) / r_std * weights
    gram = z.transpose(1, 2) @ z / n + 1e-3 * torch.eye(z.shape[-1], dtype=torch.float64)
    coeffs = torch.linalg.solve(gram, z.transpose(1, 2) @ y / n)[..., 0]  # (T, F)
    level = (r_mean / r_std)[:, 0]  # (T, 1)
    return torch.cat([coeffs, level], dim=-1).clamp(-ENCODING_CLIP, ENCODING_CLIP).float()


def probe_params(policy: GaussianPolicy) -> Params:
    """The probe: zero weights and log std 0, so actions ~ N(0, I) whatever the observation."""
    return {k: torch.zeros_like(v) for k, v in policy.init(torch.Generator().manual_seed(0)).items()}


def composition_reward(after: float, probe: float, scale: float) -> float:
    """sigmoid((G - G_probe) / scale): in (0, 1), increasing in the return G; 0 if G is not finite."""
    if not math.isfinite(after):
        return 0.0
    return 1.0 / (1.0 + math.exp(-max(min((after - probe) / scale, 50.0), -50.0)))


class RLCompositionEnv(gym.Env):
    """Compose a policy from ``pool`` (and the shared ``log_std``) for tasks of ``family``.

    Training (``reset()``): tasks drawn from ``self.np_random``, rollouts by ``sampler``, write-back.
    Meta-test (``reset(options={"encoding": e})``): composition from a given encoding only; nothing is
    sampled, trained or written back, and ``sampler`` may be None.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        pool: LayerPool,
        log_std: Tensor,
        family: RLFamily,
        obs_dim: int,
        act_dim: int,
        settings: ComposeSettings,
        sampler: Sampler | None = None,
    ) -> None:
        if pool.input_w.shape[2] != obs_dim or pool.output_w.shape[1] != act_dim or log_std.shape != (act_dim,):
            raise ValueError(
                f"the pool maps {pool.input_w.shape[2]} -> {pool.output_w.shape[1]} with log std "
                f"{tuple(log_std.shape)}, but {family.name} has obs {obs_dim}, actions {act_dim}"
            )
        self.pool, self.log_std, self.family, self.settings, self.sampler = pool, log_std, family, settings, sampler
        self.policy = GaussianPolicy(obs_dim, act_dim, (pool.width, pool.width))
        self.probe_policy_params = probe_params(self.policy)
        dim = encoding_dim(obs_dim, act_dim) + pool.size + N_SLOTS
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.action_space = gym.spaces.Discrete(pool.size)
        self._chosen: list[int] = []
        self._encoding = torch.zeros(encoding_dim(obs_dim, act_dim))
        self._task: np.ndarray | None = None
        self._probe_return = 0.0
        self._generator = torch.Generator()
        self._evaluating = False

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._chosen = []
        if options and "encoding" in options:
            self._encoding, self._task, self._evaluating = torch.as_tensor(options["encoding"]).float(), None, True
            if self._encoding.shape != (self.observation_space.shape[0] - self.pool.size - N_SLOTS,):
                raise ValueError(f"encoding of shape {tuple(self._encoding.shape)} does not fit this pool's policies")
            return self._observation(), {}
        if self.sampler is None:
            raise RuntimeError("training episodes need a sampler; pass options={'encoding': ...} to compose")
        self._evaluating = False
        self._generator = torch.Generator().manual_seed(int(self.np_random.integers(0, 2**62)))
        self._task = self.family.draw(1, self._generator).to(torch.float64).numpy()
        probe = self.sampler.sample(self.policy, self.probe_policy_params, self._task, self.settings.rollouts,
                                    self._generator)  # fmt: skip
        self._encoding = encode_task(probe)[0]
        self._probe_return = float(probe.returns.mean())
        return self._observation(), {}

    def step(self, action: int):
        valid = self.valid_actions()
        action = int(action)
        invalid = action not in valid
        if invalid:
            action = valid[action % len(valid)]
        self._chosen.append(action)
        terminated = len(self._chosen) == N_SLOTS
        info: dict[str, Any] = {"invalid": invalid}
        reward = 0.0
        if terminated:
            info["layers"] = list(self._chosen)
            if not self._evaluating:
                reward = self._train_and_score(info)
        return self._observation(), reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """(pool.size,) bool: which layers may fill the current slot (for sb3-contrib MaskablePPO)."""
        mask = np.zeros(self.pool.size, dtype=bool)
        mask[self.valid_actions()] = True
        return mask

    def valid_actions(self) -> list[int]:
        kind = ("input", "hidden", "output")[min(len(self._chosen), N_SLOTS - 1)]
        return list(self.pool.indices(kind))

    # ------------------------------------------------------------------ internals

    def params(self, layers: list[int]) -> Params:
        """The composed policy's parameters (copies of the pool's layers and log std)."""
        return {**self.pool.network(layers)[1], LOG_STD: self.log_std.clone()}

    def _train_and_score(self, info: dict[str, Any]) -> float:
        s, sampler = self.settings, self.sampler
        current, per_task, before = self.params(self._chosen), False, math.nan
        for step in range(s.inner_steps):
            episodes = sampler.sample(self.policy, current, self._task, s.rollouts, self._generator, per_task=per_task)
            if step == 0:
                before = float(episodes.returns.mean())
            current = adapt(self.policy, current, TaskBatch.of(episodes, s.gamma), s.inner_lr, per_task=per_task)
            per_task = True
        trained = {k: v[0] for k, v in current.items()}
        info["probe_return"], info["diverged"], info["rejected"] = self._probe_return, False, False
        self.pool = self.pool.count_chosen(self._chosen)
        if not all(bool(torch.isfinite(v).all()) for v in trained.values()):
            # A diverged inner step scores 0 and never enters the pool (it would spoil every later policy).
            info["return"], info["diverged"] = math.nan, True
            return 0.0
        after = sampler.sample(self.policy, current, self._task, s.rollouts, self._generator, per_task=True)
        returned = float(after.returns.mean())
        if returned >= before:
            self.pool = self.pool.write_back(self._chosen, trained, s.blend)
            self.log_std = (1 - s.blend) * self.log_std + s.blend * trained[LOG_STD]
        else:
            info["rejected"] = True
        info["return"] = returned
        return composition_reward(returned, self._probe_return, s.return_scale)

    def _observation(self) -> np.ndarray:
        chosen = torch.zeros(self.pool.size)
        chosen[self._chosen] = 1.0
        slot = torch.zeros(N_SLOTS)
        slot[min(len(self._chosen), N_SLOTS - 1)] = 1.0
        return torch.cat([self._encoding, chosen, slot]).numpy().astype(np.float32)


class CompositionLog(BaseCallback):
    """Rows of (timesteps, episodes, episode_reward, return_after, probe_return, invalid_rate,
    diverged_rate, rejected_rate) every ``log_every`` agent steps, each the mean over the compositions
    (and steps) since the previous row; ``return_after`` over the compositions whose inner step did not
    diverge; ``rejected_rate``: compositions whose inner steps lowered the return (not written back)."""

    def __init__(self, log_every: int) -> None:
        super().__init__()
        self.log_every = log_every
        self.rows: list[dict[str, float]] = []
        self._episodes = 0
        self._window: dict[str, list[float]] = {
            k: [] for k in ("reward", "return", "probe", "invalid", "diverged", "rejected")
        }

    def _on_step(self) -> bool:
        for info, reward, done in zip(self.locals["infos"], self.locals["rewards"], self.locals["dones"], strict=True):
            self._window["invalid"].append(float(info["invalid"]))
            if done:
                self._episodes += 1
                self._window["reward"].append(float(reward))
                self._window["return"].append(info["return"])
                self._window["probe"].append(info["probe_return"])
                self._window["diverged"].append(float(info["diverged"]))
                self._window["rejected"].append(float(info["rejected"]))
        if self.num_timesteps % self.log_every == 0 and self._window["reward"]:
            w = self._window
            self.rows.append({
                "timesteps": self.num_timesteps, "episodes": self._episodes,
                "episode_reward": round(float(np.mean(w["reward"])), 6),
                "return_after": _mean_of_finite(w["return"]),
                "probe_return": round(float(np.mean(w["probe"])), 4),
                "invalid_rate": round(float(np.mean(w["invalid"])), 6),
                "diverged_rate": round(float(np.mean(w["diverged"])), 6),
                "rejected_rate": round(float(np.mean(w["rejected"])), 6),
            })  # fmt: skip
            self._window = {k: [] for k in w}
        return True


def _mean_of_finite(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return round(float(np.mean(finite)), 4) if finite else math.nan


# --------------------------------------------------------------------------- composing for test tasks


@dataclass
class RLComposer:
    """A trained agent and its pool, composing one policy per test task from the task's probe rollouts.
    The environment runs in meta-test mode (nothing trained, nothing written back) and the agent acts
    deterministically."""

    agent: str
    algorithm: BaseAlgorithm
    env: RLCompositionEnv
    config: dict[str, Any]

    @property
    def policy(self) -> GaussianPolicy:
        return self.env.policy

    def _choose(self, encoding: Tensor) -> tuple[list[int], int]:
        obs, _ = self.env.reset(options={"encoding": encoding})
        state, start, invalid = None, True, 0
        while True:
            if isinstance(self.algorithm, MaskablePPO):
                action, _ = self.algorithm.predict(obs, action_masks=self.env.action_masks(), deterministic=True)
            elif isinstance(self.algorithm, RecurrentPPO):
                action, state = self.algorithm.predict(obs, state=state, episode_start=np.array([start]),
                                                       deterministic=True)  # fmt: skip
            else:
                action, _ = self.algorithm.predict(obs, deterministic=True)
            start = False
            obs, _, terminated, _, info = self.env.step(int(action))
            invalid += int(info["invalid"])
            if terminated:
                return info["layers"], invalid

    @property
    def probe_rollouts(self) -> int:
        """Probe episodes per task: as many as in training, so the agent reads encodings as noisy as those
        it learned on."""
        return self.env.settings.rollouts

    def compose(
        self, tasks: np.ndarray, sampler: Sampler, generator: torch.Generator
    ) -> tuple[Params, list[list[int]], float]:
        """Per-task policies for the (T, P) ``tasks`` (stacked, leading axis T), the layers chosen, and the
        rate of remapped choices. Runs the probe (``probe_rollouts`` episodes per task) and nothing else."""
        probe = sampler.sample(self.policy, self.env.probe_policy_params, tasks, self.probe_rollouts, generator)
        encodings = encode_task(probe)
        chosen, invalid = [], 0
        for encoding in encodings:
            layers, n_invalid = self._choose(encoding)
            chosen.append(layers)
            invalid += n_invalid
        per_task = [self.env.params(layers) for layers in chosen]
        stacked = {k: torch.stack([p[k] for p in per_task]) for k in per_task[0]}
        return stacked, chosen, invalid / (len(tasks) * N_SLOTS)


def save_rl_composer(path: str | Path, agent: str, family: str, algorithm: BaseAlgorithm, env: RLCompositionEnv,
                     ppo: PpoConfig, config: dict[str, Any]) -> None:  # fmt: skip
    """One safetensors file: the agent's policy weights, the pool, the shared log std, and metadata."""
    tensors = {f"agent.{k}": v.detach().contiguous() for k, v in algorithm.policy.state_dict().items()}
    tensors |= {f"pool.{n}": getattr(env.pool, n).contiguous() for n in _POOL_TENSORS}
    tensors[LOG_STD] = env.log_std.detach().contiguous()
    meta = {"method": agent, "family": family, "obs_dim": env.policy.obs_dim, "act_dim": env.policy.act_dim,
            "settings": to_dict(env.settings), "ppo": to_dict(ppo), "config": config}  # fmt: skip
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=pack_metadata(meta))


def load_rl_composer(path: str | Path, made_by: str, method: str, family: RLFamily) -> RLComposer:
    """Rebuild a trained composer for ``family`` (weights only: nothing is unpickled) and check it fits."""
    path = require_file(path, made_by)
    try:
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            meta = unpack_metadata(f.metadata())
        pool = LayerPool(**{n: tensors[f"pool.{n}"] for n in _POOL_TENSORS})
        settings = ComposeSettings(**meta["settings"])
        env = RLCompositionEnv(pool, tensors[LOG_STD], family, int(meta["obs_dim"]), int(meta["act_dim"]), settings)
        algorithm = make_agent(meta["method"], env, from_dict(PpoConfig, meta["ppo"], "ppo"), seed=0)
        state = {k.removeprefix("agent."): v for k, v in tensors.items() if k.startswith("agent.")}
        algorithm.policy.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, RuntimeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: not a valid REML composer ({err!r}); rerun `dvc repro {made_by}`") from None
    if (meta["method"], meta["family"]) != (method, family.name):
        raise ArtifactError(f"{path}: holds {meta['method']} for {meta['family']}, expected {method} for "
                            f"{family.name}; rerun `dvc repro {made_by}`")  # fmt: skip
    algorithm.policy.set_training_mode(False)
    return RLComposer(meta["method"], algorithm, env, meta["config"])
