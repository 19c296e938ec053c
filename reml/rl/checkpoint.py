"""RL policy checkpoints: safetensors parameters plus what built them (never a pickle)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from reml.io import ArtifactError, atomic_path, pack_metadata, require_file, unpack_metadata
from reml.nets import Params
from reml.rl.policy import GaussianPolicy


@dataclass(frozen=True)
class PolicyCheckpoint:
    method: str
    family: str
    policy: GaussianPolicy
    params: Params
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
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in ckpt.params.items()}, tmp, metadata=pack_metadata(meta))


def load_policy(path: str | Path, made_by: str, method: str, family: str) -> PolicyCheckpoint:
    """Read a policy and check it is ``method``'s for ``family`` and that its parameters fit."""
    path = require_file(path, made_by)
    try:
        params = load_file(path)
        with safe_open(path, "pt") as f:
            meta = unpack_metadata(f.metadata())
        policy = GaussianPolicy(int(meta["obs_dim"]), int(meta["act_dim"]), tuple(meta["hidden"]))
        ckpt = PolicyCheckpoint(meta["method"], meta["family"], policy, params, bool(meta["with_task"]),
                                meta["config"])  # fmt: skip
        policy.check_params(params)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as err:
        raise ArtifactError(f"{path}: not a valid policy ({err!r}); rerun `dvc repro {made_by}`") from None
    if (ckpt.method, ckpt.family) != (method, family):
        raise ArtifactError(f"{path}: holds {ckpt.method} for {ckpt.family}, expected {method} for {family}; "
                            f"rerun `dvc repro {made_by}`")  # fmt: skip
    return ckpt
