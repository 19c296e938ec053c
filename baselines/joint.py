"""`pretrained` and `oracle`: one network trained by regression on tasks from the whole distribution.

Finn et al. (2017, Sec. 5.1): "pretraining on all of the tasks, which entails training a network to
regress to random sinusoid functions and then, at test-time, fine-tuning with gradient descent on the
K provided points". The oracle is the same network given the true amplitude and phase as extra
inputs; its un-adapted error is the floor any method could reach.
"""

from __future__ import annotations

from typing import Any

import torch

from baselines.tuned import tuned_checkpoint
from reml.checkpoint import Checkpoint
from reml.config import AdaptationConfig, JointRegressionConfig
from reml.harness import mse
from reml.nets import MLP, InputKind, Params, make_inputs
from reml.seeding import generator
from reml.tasks.base import TaskDistribution, TaskSet
from reml.traininglog import TrainingLog, training_loop


def train_joint_regression(
    model: MLP,
    distribution: TaskDistribution,
    inputs: InputKind,
    iterations: int,
    tasks_per_batch: int,
    points_per_task: int,
    lr: float,
    generator: torch.Generator,
    log_every: int = 100,
    desc: str = "train",
) -> tuple[Params, TrainingLog]:
    """Adam on the MSE of fresh tasks every iteration; returns final parameters and a loss log.

    Each iteration samples ``tasks_per_batch`` tasks with ``points_per_task`` points each from
    ``distribution`` (through ``generator`` only: the fixed test and validation sets are never seen).
    """
    params = {k: v.requires_grad_() for k, v in model.init(generator).items()}
    optimizer = torch.optim.Adam(params.values(), lr=lr)

    def step(_: int) -> float:
        batch = distribution.sample(tasks_per_batch, points_per_task, 0, generator)
        x = make_inputs(batch.support_x, batch.task_params, inputs)  # (B, K, d_in)
        loss = mse(model(params, x), batch.support_y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    log = training_loop(iterations, step, TrainingLog("train_mse", every=log_every), desc)
    return {k: v.detach() for k, v in params.items()}, log


def fit_joint_baseline(
    method: str,
    model: MLP,
    distribution: TaskDistribution,
    inputs: InputKind,
    cfg: JointRegressionConfig,
    val_tasks: TaskSet,
    adaptation: AdaptationConfig,
    config: dict[str, Any],
) -> tuple[Checkpoint, TrainingLog]:
    """Train by joint regression (seeded by ``cfg.seed``), then tune the test-time step size."""
    params, log = train_joint_regression(
        model,
        distribution,
        inputs,
        cfg.iterations,
        cfg.tasks_per_batch,
        cfg.points_per_task,
        cfg.lr,
        generator(cfg.seed, f"{method}/train"),
        desc=method,
    )
    info = {"final_train_mse": log.loss[-1]}
    return tuned_checkpoint(method, model, params, inputs, val_tasks, adaptation, config, info), log
