"""RL policy checkpoints: safetensors parameters plus what built them (never a pickle). Files hold CPU
tensors (``save_tensors`` copies them there); :func:`load_policy` reads them onto a given device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reml.core.io import ArtifactError, load_tensors, reading, save_tensors
from reml.core.nets import Weights
from reml.families.rl.policy import GaussianPolicy


@dataclass(frozen=True)
class PolicyCheckpoint:
    method: str
    family: str
    policy: GaussianPolicy
    params: Weights
    with_task: bool  # the observation carries the task parameters (oracle)
    config: dict[str, Any]


def save_policy(path: str | Path, ckpt: PolicyCheckpoint) -> None:
    meta = {
        "method": ckpt.method,
        "family": ckpt.family,
        "obs_dim": ckpt.policy.obs_dim,
        "act_dim": ckpt.policy.act_dim,
        "hidden": list(ckpt.policy.hidden),
        "with_task": ckpt.with_task,
        "config": ckpt.config,
    }
    save_tensors(path, ckpt.params, meta)


def load_policy(path: str | Path, made_by: str, method: str, family: str, *, device: torch.device) -> PolicyCheckpoint:
    """Read a policy onto ``device`` and check it is ``method``'s for ``family`` and that its parameters fit."""
    params, meta = load_tensors(path, "policy", made_by, device=device)
    with reading(path, "policy", made_by):
        policy = GaussianPolicy(int(meta["obs_dim"]), int(meta["act_dim"]), tuple(meta["hidden"]))
        ckpt = PolicyCheckpoint(meta["method"], meta["family"], policy, params, bool(meta["with_task"]),
                                meta["config"])  # fmt: skip
        policy.check_params(params)
    if (ckpt.method, ckpt.family) != (method, family):
        raise ArtifactError(f"{path}: holds {ckpt.method} for {ckpt.family}, expected {method} for {family}; "
                            f"rerun `dvc repro {made_by}`")  # fmt: skip
    return ckpt
