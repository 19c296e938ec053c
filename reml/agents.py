"""REML's agents: PPO-family policies that compose networks from the layer pool (shared/docs/reml.md).

Three agents, one environment (:class:`reml.compose_env.CompositionEnv`):

- ``reml_ppo``: stable-baselines3 ``PPO`` with ``MlpPolicy``. It cannot mask, so an invalid choice is
  mapped onto the valid sub-pool of the slot by the environment and counted (the invalid-action rate);
- ``reml_maskable``: sb3-contrib ``MaskablePPO``, which never samples an invalid layer;
- ``reml_lstm``: sb3-contrib ``RecurrentPPO`` with ``MlpLstmPolicy``, remapped like ``reml_ppo``.

A trained agent is stored as a directory: ``policy.zip`` (the SB3 file, to inspect or resume with
SB3), ``policy.safetensors`` (the policy weights and everything needed to rebuild the composer:
agent, encoding, configs, fine-tuning step sizes) and ``pool.safetensors``. Evaluation reads only
the safetensors files: no pickle is ever loaded.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from torch import Tensor

from reml.compose_env import CompositionEnv
from reml.config import PpoConfig, RemlConfig, from_dict, reml_method, to_dict
from reml.io import ArtifactError, atomic_path, pack_metadata, require_file, unpack_metadata
from reml.nets import MLP, InputKind, Params
from reml.pool import LayerPool, load_pool, save_pool
from reml.tasks import TaskSet
from reml.tasks.sinusoid import SinusoidDistribution

ALGORITHMS: dict[str, tuple[type[BaseAlgorithm], str]] = {
    "reml_ppo": (PPO, "MlpPolicy"),
    "reml_maskable": (MaskablePPO, "MlpPolicy"),
    "reml_lstm": (RecurrentPPO, "MlpLstmPolicy"),
}


def create_pool(cfg: RemlConfig, generator: torch.Generator) -> LayerPool:
    p = cfg.pool
    return LayerPool.create(1, p.width, 1, p.n_input, p.n_hidden, p.n_output, generator)


def make_env(
    pool: LayerPool,
    cfg: RemlConfig,
    distribution: SinusoidDistribution,
    shots: Sequence[int],
    encoding: str,
    write_back: bool | None = None,
) -> CompositionEnv:
    """The composition environment of ``cfg``; training tasks draw K from ``shots`` every episode."""
    return CompositionEnv(
        pool,
        distribution,
        depth=cfg.depth,
        k_support=tuple(shots),
        k_query=cfg.k_query,
        inner_optimizer=cfg.inner_optimizer,
        inner_lr=cfg.inner_lr,
        inner_steps=cfg.inner_steps,
        encoding=encoding,  # type: ignore[arg-type]
        reward=cfg.reward,
        reward_scale=cfg.reward_scale,
        write_back=cfg.write_back if write_back is None else write_back,
        blend=cfg.blend,
    )


def make_agent(agent: str, env: CompositionEnv, ppo: PpoConfig, seed: int) -> BaseAlgorithm:
    if agent not in ALGORITHMS:
        raise ValueError(f"unknown agent {agent!r}; allowed: {list(ALGORITHMS)}")
    algorithm, policy = ALGORITHMS[agent]
    return algorithm(
        policy,
        env,
        learning_rate=ppo.learning_rate,
        clip_range=ppo.clip_range,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        gamma=ppo.gamma,
        ent_coef=ppo.ent_coef,
        seed=seed,
        device="cpu",
        verbose=0,
    )


# --------------------------------------------------------------------------- training


_ADDRESS = re.compile(rb" at 0x[0-9a-fA-F]+")  # only in SB3's human-readable reprs, never in pickled payloads


def save_sb3_zip(algorithm: BaseAlgorithm, path: Path) -> None:
    """``algorithm.save`` without the run-dependent parts, so one seed gives a byte-identical file (and DVC
    output) from run to run: the episode-info buffers (they hold elapsed times) and the start time are
    left out, memory addresses in the readable reprs SB3 writes next to each pickled object
    (``<function ... at 0x7f...>``) are removed, and every zip entry gets the same fixed timestamp."""
    with atomic_path(path) as tmp:
        raw = Path(f"{tmp}.raw.zip")
        algorithm.save(raw, exclude=["ep_info_buffer", "ep_success_buffer", "start_time"])
        with zipfile.ZipFile(raw) as source, zipfile.ZipFile(tmp, "w") as target:
            for info in source.infolist():
                fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
                fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
                content = source.read(info.filename)
                if info.filename == "data":
                    content = _ADDRESS.sub(b"", content)
                target.writestr(fixed, content)
        raw.unlink()


class TrainingCurve(BaseCallback):
    """Rows of (timesteps, episodes, episode_reward, built_loss, invalid_rate) every ``log_every`` steps,
    each the mean over the episodes (and steps) since the previous row."""

    def __init__(self, log_every: int) -> None:
        super().__init__()
        self.log_every = log_every
        self.rows: list[dict[str, float]] = []
        self._episodes = 0
        self._reset_window()
        self._return = 0.0

    def _reset_window(self) -> None:
        self._rewards: list[float] = []
        self._losses: list[float] = []
        self._steps = 0
        self._invalid = 0

    def _on_step(self) -> bool:
        for info, reward, done in zip(self.locals["infos"], self.locals["rewards"], self.locals["dones"], strict=True):
            self._steps += 1
            self._invalid += int(info["invalid"])
            self._return += float(reward)
            if done:
                self._episodes += 1
                self._rewards.append(self._return)
                self._losses.append(info["loss"])
                self._return = 0.0
        if self.num_timesteps % self.log_every == 0 and self._rewards:
            self.rows.append(
                {
                    "timesteps": self.num_timesteps,
                    "episodes": self._episodes,
                    "episode_reward": round(float(np.mean(self._rewards)), 6),
                    "built_loss": round(float(np.mean(self._losses)), 6),
                    "invalid_rate": round(self._invalid / self._steps, 6),
                }
            )
            self._reset_window()
        return True


class Checkpoints(BaseCallback):
    """Every ``every`` timesteps, the SB3 policy zip and the pool go to ``directory/step<N>/``."""

    def __init__(self, env: CompositionEnv, directory: Path, every: int) -> None:
        super().__init__()
        self.env, self.directory, self.every = env, directory, every

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            out = self.directory / f"step{self.num_timesteps}"
            out.mkdir(parents=True, exist_ok=True)
            save_sb3_zip(self.model, out / "policy.zip")
            save_pool(out / "pool.safetensors", self.env.pool)
        return True


# --------------------------------------------------------------------------- composing for test tasks


@dataclass
class Composer:
    """A trained agent and its pool, composing one network per task from the task's support points.

    The pool is never modified (the environment runs in evaluation mode: no query data, no training,
    no write-back), and the policy acts deterministically.
    """

    agent: str
    encoding: str
    algorithm: BaseAlgorithm
    env: CompositionEnv
    step_sizes: dict[int, float] = field(default_factory=dict)  # K -> test-time step size
    info: dict[str, Any] = field(default_factory=dict)
    inputs: InputKind = "x"
    invalid_rates: dict[int, float] = field(default_factory=dict)  # K -> remapped choices when last composed

    @property
    def method(self) -> str:
        return reml_method(self.agent, self.encoding)

    @property
    def pool(self) -> LayerPool:
        return self.env.pool

    @property
    def model(self) -> MLP:
        return MLP((1, *[self.pool.width] * (self.env.n_slots - 1), 1))

    def step_size(self, k: int) -> float:
        if k not in self.step_sizes:
            raise ArtifactError(f"the {self.method} agent has step sizes for K in {sorted(self.step_sizes)}, not {k}")
        return self.step_sizes[k]

    def compose(self, support_x: Tensor, support_y: Tensor, task_params: Tensor | None = None) -> tuple[list[int], int]:
        """Layers chosen for one task (support (K, 1) each), and how many choices had to be remapped."""
        options: dict[str, Any] = {"support": (support_x, support_y)}
        if self.encoding == "oracle":
            options["task_params"] = task_params
        obs, _ = self.env.reset(options=options)
        state, start, invalid = None, True, 0
        while True:
            if self.agent == "reml_maskable":
                action, _ = self.algorithm.predict(obs, action_masks=self.env.action_masks(), deterministic=True)
            elif self.agent == "reml_lstm":
                action, state = self.algorithm.predict(
                    obs, state=state, episode_start=np.array([start]), deterministic=True
                )
            else:
                action, _ = self.algorithm.predict(obs, deterministic=True)
            start = False
            obs, _, terminated, _, info = self.env.step(int(action))
            invalid += int(info["invalid"])
            if terminated:
                return info["layers"], invalid

    def initial_params(self, tasks: TaskSet) -> tuple[Params, bool]:
        """Per-task initial parameters, stacked along a leading task dimension (second value: True).

        Reads the tasks' support points only (and, for the oracle encoding, their true parameters);
        query points are never touched.
        """
        params, self.invalid_rates[tasks.k_max] = self.compose_all(tasks.support_x, tasks.support_y, tasks.task_params)
        return params, True

    def compose_all(self, support_x: Tensor, support_y: Tensor, task_params: Tensor) -> tuple[Params, float]:
        """Stacked parameters of the networks composed for n tasks, and the rate of remapped choices."""
        per_task, invalid = [], 0
        for i in range(support_x.shape[0]):
            layers, n_invalid = self.compose(support_x[i], support_y[i], task_params[i])
            per_task.append(self.pool.network(layers)[1])
            invalid += n_invalid
        stacked = {k: torch.stack([p[k] for p in per_task]) for k in per_task[0]}
        return stacked, invalid / (support_x.shape[0] * self.env.n_slots)


def save_agent(
    directory: Path,
    agent: str,
    encoding: str,
    algorithm: BaseAlgorithm,
    pool: LayerPool,
    cfg: RemlConfig,
    ppo: PpoConfig,
    shots: Sequence[int],
    step_sizes: dict[int, float],
    info: dict[str, Any],
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    save_sb3_zip(algorithm, directory / "policy.zip")
    meta = {
        "agent": agent,
        "encoding": encoding,
        "reml": to_dict(cfg),
        "ppo": to_dict(ppo),
        "shots": list(shots),
        "step_sizes": {str(k): lr for k, lr in sorted(step_sizes.items())},
        "info": info,
    }
    state = {k: v.detach().contiguous() for k, v in algorithm.policy.state_dict().items()}
    with atomic_path(directory / "policy.safetensors") as tmp:
        save_file(state, tmp, metadata=pack_metadata(meta))
    save_pool(directory / "pool.safetensors", pool, config=to_dict(cfg))


def load_agent(directory: str | Path, distribution: SinusoidDistribution, made_by: str) -> Composer:
    """Rebuild a trained agent from its safetensors files (weights only: nothing is unpickled)."""
    directory = Path(directory)
    policy_path = require_file(directory / "policy.safetensors", made_by)
    pool = load_pool(directory / "pool.safetensors", made_by)
    try:
        state = load_file(policy_path)
        with safe_open(policy_path, "pt") as f:
            meta = unpack_metadata(f.metadata())
        cfg = from_dict(RemlConfig, meta["reml"], "reml")
        ppo = from_dict(PpoConfig, meta["ppo"], "ppo")
        env = make_env(pool, cfg, distribution, meta["shots"], meta["encoding"], write_back=False)
        algorithm = make_agent(meta["agent"], env, ppo, seed=0)
        algorithm.policy.load_state_dict(state, strict=True)
        step_sizes = {int(k): float(v) for k, v in meta["step_sizes"].items()}
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, RuntimeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{policy_path}: not a valid REML agent ({err!r}); rerun `dvc repro {made_by}`") from None
    if not all(lr > 0 and math.isfinite(lr) for lr in step_sizes.values()):
        raise ArtifactError(f"{policy_path}: step sizes {step_sizes} are not all positive and finite")
    algorithm.policy.set_training_mode(False)
    return Composer(meta["agent"], meta["encoding"], algorithm, env, step_sizes, meta["info"])
