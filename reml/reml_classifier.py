"""A trained REML classification agent: composes one ConvNet per episode from the support images, and
is scored through the shared harness like every other method (per-task initial parameters).

Stored like the regression agents (reml/agents.py): ``policy.zip`` (SB3, for inspection),
``policy.safetensors`` (weights + metadata) and ``pool.safetensors``; loading reads only safetensors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from stable_baselines3.common.base_class import BaseAlgorithm

from reml.agents import make_agent, save_sb3_zip
from reml.classification import (
    ClassificationConfig,
    EpisodeBatch,
    EpisodeDistribution,
    score_accuracy,
    tune_step_size,
)
from reml.compose_conv import BlockPool, ConvCompositionEnv, load_block_pool, save_block_pool
from reml.config import PpoConfig, from_dict, to_dict
from reml.io import ArtifactError, atomic_path, pack_metadata, require_file, unpack_metadata
from reml.nets import Params
from reml.tasks.images import ClassPool


@dataclass
class Classifier:
    agent: str
    algorithm: BaseAlgorithm
    env: ConvCompositionEnv
    step_sizes: dict[int, float] = field(default_factory=dict)
    invalid_rates: dict[int, float] = field(default_factory=dict)  # K -> remapped choices when last composed
    distinct_networks: dict[int, int] = field(default_factory=dict)  # K -> different compositions then

    @staticmethod
    def from_training(agent: str, algorithm: BaseAlgorithm, env: ConvCompositionEnv, cfg, n_way: int) -> Classifier:
        """The trained policy with its final pool, in evaluation mode (no query data, no write-back)."""
        frozen = _env(env.pool, cfg, n_way, write_back=False)
        algorithm.policy.set_training_mode(False)
        return Classifier(agent, algorithm, frozen)

    @property
    def pool(self) -> BlockPool:
        return self.env.pool

    def compose(self, support_x: torch.Tensor, support_y: torch.Tensor) -> tuple[list[int], int]:
        """Blocks chosen for one episode from its support images, and how many choices were remapped."""
        obs, _ = self.env.reset(options={"support": (support_x, support_y)})
        state, start, invalid = None, True, 0
        while True:
            if self.agent == "reml_maskable":
                action, _ = self.algorithm.predict(obs, action_masks=self.env.action_masks(), deterministic=True)
            elif self.agent == "reml_lstm":
                action, state = self.algorithm.predict(obs, state=state, episode_start=np.array([start]),
                                                       deterministic=True)  # fmt: skip
            else:
                action, _ = self.algorithm.predict(obs, deterministic=True)
            start = False
            obs, _, terminated, _, info = self.env.step(int(action))
            invalid += int(info["invalid"])
            if terminated:
                return info["layers"], invalid

    def initial_params(self, episodes: EpisodeBatch) -> Params:
        """Stacked per-episode parameters (support images only; query images are never read)."""
        per_task, invalid, composed = [], 0, set()
        for i in range(len(episodes)):
            blocks, n_invalid = self.compose(episodes.support_x[i], episodes.support_y[i])
            per_task.append(self.pool.network(blocks)[1])
            invalid += n_invalid
            composed.add(tuple(blocks))
        k = episodes.support_x.shape[1] // self.env.n_way
        self.invalid_rates[k] = invalid / (len(episodes) * self.env.n_slots)
        self.distinct_networks[k] = len(composed)
        return {name: torch.stack([p[name] for p in per_task]) for name in per_task[0]}

    def tune(self, episodes: EpisodeBatch, steps: int, grid: Sequence[float]) -> tuple[float, dict[float, float]]:
        return tune_step_size(self.pool.net, self.initial_params(episodes), episodes, steps, grid, per_task=True)

    def score(self, episodes: EpisodeBatch, adaptation):
        return score_accuracy(self.pool.net, self.initial_params(episodes), episodes, adaptation, per_task=True)


def _env(pool: BlockPool, cfg: ClassificationConfig, n_way: int, write_back: bool) -> ConvCompositionEnv:
    """An environment for composing (the distribution is a placeholder: evaluation passes the support set)."""
    r = cfg.reml
    placeholder = ClassPool(torch.zeros(n_way, 2, cfg.in_channels, 1, 1), tuple(map(str, range(n_way))))
    return ConvCompositionEnv(pool, EpisodeDistribution(placeholder, n_way), cfg.shots, cfg.n_query, r.inner_lr,
                              r.inner_steps, r.reward_scale, write_back=write_back, blend=r.blend)  # fmt: skip


def save_reml_classifier(
    directory: Path, classifier: Classifier, ppo: PpoConfig, step_sizes: dict[int, float], info: dict[str, Any],
    cfg: ClassificationConfig,
) -> None:  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    save_sb3_zip(classifier.algorithm, directory / "policy.zip")
    meta = {
        "agent": classifier.agent,
        "n_way": classifier.env.n_way,
        "classification": to_dict(cfg),
        "ppo": to_dict(ppo),
        "step_sizes": {str(k): v for k, v in sorted(step_sizes.items())},
        "info": info,
    }
    state = {k: v.detach().contiguous() for k, v in classifier.algorithm.policy.state_dict().items()}
    with atomic_path(directory / "policy.safetensors") as tmp:
        save_file(state, tmp, metadata=pack_metadata(meta))
    save_block_pool(directory / "pool.safetensors", classifier.pool)


def load_reml_classifier(directory: str | Path, made_by: str) -> Classifier:
    directory = Path(directory)
    policy_path = require_file(directory / "policy.safetensors", made_by)
    pool = load_block_pool(directory / "pool.safetensors", made_by)
    try:
        state = load_file(policy_path)
        with safe_open(policy_path, "pt") as f:
            meta = unpack_metadata(f.metadata())
        cfg = from_dict(ClassificationConfig, meta["classification"], "classification")
        env = _env(pool, cfg, int(meta["n_way"]), write_back=False)
        algorithm = make_agent(meta["agent"], env, from_dict(PpoConfig, meta["ppo"], "ppo"), seed=0)
        algorithm.policy.load_state_dict(state, strict=True)
        step_sizes = {int(k): float(v) for k, v in meta["step_sizes"].items()}
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, RuntimeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{policy_path}: not a valid REML agent ({err!r}); rerun `dvc repro {made_by}`") from None
    if not all(lr > 0 and math.isfinite(lr) for lr in step_sizes.values()):
        raise ArtifactError(f"{policy_path}: step sizes {step_sizes} are not all positive and finite")
    algorithm.policy.set_training_mode(False)
    return Classifier(meta["agent"], algorithm, env, step_sizes)
