"""Shared last step of the non-meta-learned baselines: tune the test-time step size, package a checkpoint."""

from __future__ import annotations

import math
from typing import Any

from reml.checkpoint import Checkpoint
from reml.config import AdaptationConfig
from reml.harness import tune_step_size
from reml.nets import MLP, InputKind, Params
from reml.tasks import TaskSet


def tuned_checkpoint(
    method: str,
    model: MLP,
    params: Params,
    inputs: InputKind,
    val_tasks: TaskSet,
    adaptation: AdaptationConfig,
    config: dict[str, Any],
    info: dict[str, Any] | None = None,
) -> Checkpoint:
    """Choose the fine-tuning step size for each K on the validation tasks (never the test tasks)."""
    step_sizes, tuning = {}, {}
    for k in adaptation.shots:
        best, objective = tune_step_size(
            model, params, val_tasks.with_shots(k), inputs, adaptation.optimizer, adaptation.steps, adaptation.lr_grid
        )
        step_sizes[k] = best
        # JSON has no infinity: a step size whose fine-tuning diverged is recorded as null.
        by_lr = {repr(lr): (value if math.isfinite(value) else None) for lr, value in objective.items()}
        tuning[f"k{k}"] = {"chosen": best, "val_mse_by_lr": by_lr}
    return Checkpoint(
        method=method,
        sizes=model.sizes,
        inputs=inputs,
        step_sizes=step_sizes,
        params={k: v.detach().clone() for k, v in params.items()},
        config=config,
        info={**(info or {}), "step_size_tuning": tuning},
    )
