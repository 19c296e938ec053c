"""Tuning the test-time step size per K on validation tasks: the last step of scratch, pretrained,
oracle and REML training."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from reml.checkpoint import Checkpoint
from reml.config import AdaptationConfig
from reml.harness import tune_step_size
from reml.nets import MLP, InputKind, Params
from reml.tasks import TaskSet


def tune_per_k(
    model: MLP,
    initial_params: Callable[[TaskSet], tuple[Params, bool]],
    inputs: InputKind,
    val_tasks: TaskSet,
    adaptation: AdaptationConfig,
) -> tuple[dict[int, float], dict[str, Any]]:
    """Choose the fine-tuning step size for each K on the validation tasks (never the test tasks).

    ``initial_params(view)`` gives the parameters to fine-tune for a K-shot view of the tasks, shared
    (second value False) or one set per task (True, as for REML). Returns (K -> step size, a record of
    the validation objective per step size for the methods file).
    """
    step_sizes, tuning = {}, {}
    for k in adaptation.shots:
        view = val_tasks.with_shots(k)
        params, per_task = initial_params(view)
        best, objective = tune_step_size(
            model, params, view, inputs, adaptation.optimizer, adaptation.steps, adaptation.lr_grid, per_task
        )
        step_sizes[k] = best
        # JSON has no infinity: a step size whose fine-tuning diverged is recorded as null.
        by_lr = {repr(lr): (value if math.isfinite(value) else None) for lr, value in objective.items()}
        tuning[f"k{k}"] = {"chosen": best, "val_mse_by_lr": by_lr}
    return step_sizes, tuning


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
    """A checkpoint of shared initial parameters with step sizes tuned per K by :func:`tune_per_k`."""
    step_sizes, tuning = tune_per_k(model, lambda _: (params, False), inputs, val_tasks, adaptation)
    return Checkpoint(
        method=method,
        sizes=model.sizes,
        inputs=inputs,
        step_sizes=step_sizes,
        params={k: v.detach().clone() for k, v in params.items()},
        config=config,
        info={**(info or {}), "step_size_tuning": tuning},
    )
