"""REML's agents: PPO-family policies that compose networks from the layer pool (shared/docs/reml.md).

Three agents, one environment skeleton (:class:`reml.methods.reml.env.CompositionEnv`):

- ``reml_ppo``: stable-baselines3 ``PPO`` with ``MlpPolicy``. It cannot mask, so an invalid choice is
  mapped onto the valid sub-pool of the slot by the environment and counted (the invalid-action rate);
- ``reml_maskable``: sb3-contrib ``MaskablePPO``, which never samples an invalid layer;
- ``reml_lstm``: sb3-contrib ``RecurrentPPO`` with ``MlpLstmPolicy``, remapped like ``reml_ppo``.

A trained agent composes for a meta-test task through :class:`Composer`, the one loop that chooses a
layer per slot for every family. Its policy weights are stored as safetensors with the metadata
needed to rebuild it (evaluation never unpickles anything); ``policy.zip``, the SB3 file, is written
beside them to inspect or resume training with SB3.

An agent runs on its environment's device (the pool's: :attr:`CompositionEnv.device`), so the policy,
the pool and the inner training of composed networks share one device; files always hold CPU tensors.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from torch import Tensor

from reml.core.io import atomic_path, load_tensors, reading, save_tensors
from reml.core.nets import Weights
from reml.methods.config import REML_AGENTS, PpoConfig
from reml.methods.reml.env import CompositionEnv


@dataclass(frozen=True)
class AgentSpec:
    algorithm: type[BaseAlgorithm]
    policy: str
    masks: bool  # samples only valid layers (sb3-contrib's action masks)
    recurrent: bool  # keeps an LSTM state across the steps of an episode


AGENTS: dict[str, AgentSpec] = {
    "reml_ppo": AgentSpec(PPO, "MlpPolicy", masks=False, recurrent=False),
    "reml_maskable": AgentSpec(MaskablePPO, "MlpPolicy", masks=True, recurrent=False),
    "reml_lstm": AgentSpec(RecurrentPPO, "MlpLstmPolicy", masks=False, recurrent=True),
}
assert tuple(AGENTS) == REML_AGENTS


def make_agent(agent: str, env: CompositionEnv, ppo: PpoConfig, seed: int) -> BaseAlgorithm:
    """A fresh ``agent`` on ``env``, on the environment's device (SB3's ``seed`` seeds it as before)."""
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; allowed: {list(AGENTS)}")
    spec = AGENTS[agent]
    return spec.algorithm(
        spec.policy,
        env,
        learning_rate=ppo.learning_rate,
        clip_range=ppo.clip_range,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        gamma=ppo.gamma,
        ent_coef=ppo.ent_coef,
        seed=seed,
        device=env.device,
        verbose=0,
    )


# --------------------------------------------------------------------------- composing for test tasks


@dataclass(frozen=True)
class Composition:
    """The networks composed for n tasks: parameters stacked along a leading task axis, the layers
    chosen for each task, and the share of choices that had to be remapped onto a valid layer."""

    params: Weights
    layers: list[list[int]]
    invalid_rate: float

    @property
    def distinct(self) -> int:
        """How many different networks were composed."""
        return len({tuple(x) for x in self.layers})


def compose_layers(env: CompositionEnv, layers: Sequence[Sequence[int]]) -> Composition:
    """The networks of the given compositions (copies of the pool's layers), stacked along a task axis."""
    per_task = [env.network_params(chosen) for chosen in layers]
    stacked = {k: torch.stack([p[k] for p in per_task]) for k in per_task[0]}
    return Composition(stacked, [list(x) for x in layers], 0.0)


@dataclass
class Composer:
    """A trained agent and its pool, composing one network per task.

    The environment runs in meta-test mode (``reset(options=...)``: no query data, no training, no
    write-back, so the pool is never modified) and the policy acts deterministically.
    """

    agent: str
    algorithm: BaseAlgorithm
    env: CompositionEnv

    def choose(self, options: dict[str, Any]) -> tuple[list[int], int]:
        """The layers chosen for one task (``options`` as the environment's ``reset`` takes them), and how
        many choices had to be remapped."""
        spec = AGENTS[self.agent]
        obs, _ = self.env.reset(options=options)
        state, start, invalid = None, True, 0
        while True:
            if spec.masks:
                action, _ = self.algorithm.predict(obs, action_masks=self.env.action_masks(), deterministic=True)
            elif spec.recurrent:
                action, state = self.algorithm.predict(obs, state=state, episode_start=np.array([start]),
                                                       deterministic=True)  # fmt: skip
            else:
                action, _ = self.algorithm.predict(obs, deterministic=True)
            start = False
            obs, _, terminated, _, info = self.env.step(int(action))
            invalid += int(info["invalid"])
            if terminated:
                return info["layers"], invalid

    def compose(self, tasks: Iterable[dict[str, Any]]) -> Composition:
        """One network per task, each composed from that task's ``reset`` options alone."""
        layers, invalid = [], 0
        for options in tasks:
            chosen, n_invalid = self.choose(options)
            layers.append(chosen)
            invalid += n_invalid
        built = compose_layers(self.env, layers)
        return replace(built, invalid_rate=invalid / (len(layers) * self.env.n_slots))


# --------------------------------------------------------------------------- training and files


class TrainingCurve(BaseCallback):
    """Rows of (timesteps, episodes, episode_reward, built_loss, invalid_rate) every ``log_every`` steps,
    each the mean over the episodes (and steps) since the previous row (supervised families)."""

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


_ADDRESS = re.compile(rb" at 0x[0-9a-fA-F]+")  # only in SB3's human-readable reprs, never in pickled payloads


def _without_os(system_info: bytes) -> bytes:
    """SB3's ``system_info.txt`` without its ``- OS:`` line: that line holds the kernel's version and build
    string, which differ between machines of one CPU type (seen: REML model directories a few bytes apart
    in dvc.lock with every score identical). The package versions stay; SB3 only prints the file."""
    return b"\n".join(line for line in system_info.split(b"\n") if not line.startswith(b"- OS:"))


def save_sb3_zip(algorithm: BaseAlgorithm, path: Path) -> None:
    """``algorithm.save`` without the run-dependent parts, so one seed gives a byte-identical file (and DVC
    output) from run to run: the episode-info buffers (they hold elapsed times) and the start time are
    left out, memory addresses in the readable reprs SB3 writes next to each pickled object
    (``<function ... at 0x7f...>``) are removed, so is the kernel version in ``system_info.txt``, and every
    zip entry gets the same fixed timestamp."""
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
                elif info.filename == "system_info.txt":
                    content = _without_os(content)
                target.writestr(fixed, content)
        raw.unlink()


def policy_tensors(algorithm: BaseAlgorithm, prefix: str = "") -> dict[str, Tensor]:
    """The agent's policy weights, named as in its ``state_dict`` (after ``prefix``), on the agent's device
    (``save_tensors`` writes CPU copies)."""
    return {f"{prefix}{k}": v.detach() for k, v in algorithm.policy.state_dict().items()}


def save_agent(directory: Path, algorithm: BaseAlgorithm, meta: dict[str, Any]) -> None:
    """``directory/policy.zip`` (SB3's file) and ``directory/policy.safetensors`` (weights and ``meta``)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_sb3_zip(algorithm, directory / "policy.zip")
    save_tensors(directory / "policy.safetensors", policy_tensors(algorithm), meta)


def load_agent_file(
    directory: Path, made_by: str, *, device: torch.device | str = "cpu"
) -> tuple[Path, dict[str, Tensor], dict[str, Any]]:
    """The policy file of a directory written by :func:`save_agent`: (path, weights on ``device``, metadata)."""
    path = directory / "policy.safetensors"
    state, meta = load_tensors(path, "REML agent", made_by, device=device)
    return path, state, meta


def restore_agent(
    agent: str, env: CompositionEnv, ppo: PpoConfig, state: dict[str, Tensor], path: Path, made_by: str
) -> BaseAlgorithm:
    """Rebuild a trained agent on ``env`` (and its device) from its policy weights, in evaluation mode;
    errors name ``path``."""
    with reading(path, "REML agent", made_by):
        algorithm = make_agent(agent, env, ppo, seed=0)
        algorithm.policy.load_state_dict(state, strict=True)
    algorithm.policy.set_training_mode(False)
    return algorithm
