"""The sinusoid methods other than REML (Finn et al. 2017, Sec. 5.1), each a :class:`Checkpoint` for the harness.

- ``scratch``: a random initialisation;
- ``pretrained``: "pretraining on all of the tasks, which entails training a network to regress to
  random sinusoid functions and then, at test-time, fine-tuning with gradient descent on the K
  provided points";
- ``oracle``: the same network given the true amplitude and phase as extra inputs; its un-adapted
  error is the floor any method could reach.

Each tunes its test-time step size per K on the validation tasks (never the test tasks), as REML does.
``maml``, ``fomaml`` and ``reptile`` (:mod:`reml.methods.meta_learners`) are fine-tuned with their own
inner step size instead.

Devices: every entry point takes the ``device`` it trains and tunes on. Initialisations and training
tasks are drawn on the CPU from CPU generators and moved there; the validation tasks are moved there
once. The checkpoints hold their parameters on ``device`` (saving copies them to the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from reml.core.config import to_dict
from reml.core.harness import mse, score, tune_step_size
from reml.core.nets import MLP, InputKind, Weights, input_dim, make_inputs, on_device
from reml.core.seeding import generator
from reml.core.tasks import TaskDistribution, TaskSet, load_taskset
from reml.core.traininglog import TrainingLog, train_adam
from reml.families.sinusoid.checkpoint import Checkpoint, save_checkpoint
from reml.families.sinusoid.config import AdaptationConfig, SinusoidParams
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.maml import MetaBatches
from reml.methods.meta_learners import meta_train

JOINT_INPUTS: dict[str, InputKind] = {"pretrained": "x", "pretrained_matched": "x", "oracle": "x+task_params"}


def tune_per_k(
    model: MLP,
    initial_params: Callable[[TaskSet], tuple[Weights, bool]],
    inputs: InputKind,
    val_tasks: TaskSet,
    adaptation: AdaptationConfig,
) -> tuple[dict[int, float], dict[str, Any]]:
    """Choose the fine-tuning step size for each K on the validation tasks (never the test tasks).

    ``initial_params(view)`` gives the parameters to fine-tune for a K-shot view of the tasks, shared
    (second value False) or one set per task (True, as for REML), on the device of ``val_tasks``. The
    objective is the mean query MSE over steps 1..S. Returns (K -> step size, a record of the validation
    objective per step size for the methods file).
    """
    step_sizes, tuning = {}, {}
    for k in adaptation.shots:
        view = val_tasks.with_shots(k)
        params, per_task = initial_params(view)
        best, objective = tune_step_size(
            lambda a, params=params, per_task=per_task, view=view: score(
                model, params, view, a, inputs=inputs, per_task=per_task
            ),
            adaptation.optimizer,
            adaptation.steps,
            adaptation.lr_grid,
        )
        step_sizes[k] = best
        # JSON has no infinity: a step size whose fine-tuning diverged is recorded as null.
        by_lr = {repr(lr): (value if math.isfinite(value) else None) for lr, value in objective.items()}
        tuning[f"k{k}"] = {"chosen": best, "val_mse_by_lr": by_lr}
    return step_sizes, tuning


def tuned_checkpoint(
    method: str,
    model: MLP,
    params: Weights,
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


def scratch(
    params: SinusoidParams, val_tasks: TaskSet, method: str = "scratch", replicate: int = 0, *, device: torch.device
) -> Checkpoint:
    """A seeded random initialisation (seed ``train_scratch.seed + replicate``) of the family's network
    (``scratch``) or of REML's depth (``scratch_deep``), with step sizes tuned on ``device``."""
    cfg = params.train_scratch
    hidden = params.model.hidden if method == "scratch" else cfg.deep_hidden
    model = MLP((1, *hidden, 1))
    init = on_device(model.init(generator(cfg.seed + replicate, "scratch/init")), device)
    config = to_dict(cfg) | {"model": {"hidden": list(hidden)}, "replicate": replicate}
    return tuned_checkpoint(method, model, init, "x", val_tasks.to(device), params.adaptation, config)


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
    *,
    device: torch.device,
) -> tuple[Weights, TrainingLog]:
    """Adam on the MSE of fresh tasks every iteration, on ``device``; returns final parameters (there) and
    a loss log.

    Each iteration samples ``tasks_per_batch`` tasks with ``points_per_task`` points each from
    ``distribution`` (through ``generator`` only: the fixed test and validation sets are never seen),
    on the CPU, and moves them to ``device``; the initialisation is drawn the same way, before any task.
    """

    def batch_loss(params: Weights) -> torch.Tensor:
        batch = distribution.sample(tasks_per_batch, points_per_task, 0, generator).to(device)
        x = make_inputs(batch.support_x, batch.task_params, inputs)  # (B, K, d_in)
        return mse(model(params, x), batch.support_y)

    init = on_device(model.init(generator), device)
    return train_adam(init, batch_loss, lr, iterations, TrainingLog("train_mse", every=log_every), desc)


def joint(
    method: str,
    params: SinusoidParams,
    val_tasks: TaskSet,
    replicate: int = 0,
    *,
    device: torch.device,
    distribution: TaskDistribution | None = None,
) -> tuple[Checkpoint, TrainingLog]:
    """``pretrained``, ``pretrained_matched`` or ``oracle``: trained by joint regression (its own params
    section, seed + ``replicate``) on ``distribution`` (default: the sinusoids), then its test-time step
    size tuned, both on ``device``."""
    cfg = getattr(params, f"train_{method}")
    inputs = JOINT_INPUTS[method]
    distribution = distribution or SinusoidDistribution.of(params.sinusoid)
    model = MLP((input_dim(inputs, 1, len(distribution.param_names)), *params.model.hidden, 1))
    trained, log = train_joint_regression(
        model,
        distribution,
        inputs,
        cfg.iterations,
        cfg.tasks_per_batch,
        cfg.points_per_task,
        cfg.lr,
        generator(cfg.seed + replicate, f"{method}/train"),
        desc=method,
        device=device,
    )
    config = to_dict(cfg) | {"model": to_dict(params.model), "sinusoid": to_dict(params.sinusoid),
                             "replicate": replicate}  # fmt: skip
    info = {"final_train_mse": log.loss[-1]}
    ckpt = tuned_checkpoint(method, model, trained, inputs, val_tasks.to(device), params.adaptation, config, info)
    return ckpt, log


def train_joint(method: str, params: SinusoidParams, val_tasks: str, out: str, log_out: str, replicate: int, *,
                device: torch.device) -> None:  # fmt: skip
    """The ``train_pretrained`` / ``train_oracle`` stage: train and tune on ``device``, write the checkpoint
    and the log."""
    ckpt, log = joint(method, params, load_taskset(val_tasks), replicate, device=device)
    save_checkpoint(out, ckpt)
    log.write(log_out)
    print(f"{method}: final train MSE {log.loss[-1]:.4f}, fine-tuning step sizes {ckpt.step_sizes} (K -> lr)")


def meta_learner(
    params: SinusoidParams,
    variant: str,
    replicate: int = 0,
    *,
    device: torch.device,
    distribution: TaskDistribution | None = None,
) -> tuple[Checkpoint, TrainingLog]:
    """``maml``, ``fomaml``, ``reptile`` or ``maml_matched`` meta-trained on ``distribution`` (default: the
    sinusoids) on ``device`` (``train_maml``, seed + ``replicate``); the test-time step size is the variant's
    own inner step size for every K."""
    cfg = getattr(params.train_maml, variant)
    model = MLP((1, *params.model.hidden, 1))
    distribution = distribution or SinusoidDistribution.of(params.sinusoid)
    batches = MetaBatches(distribution, cfg.meta_batch, cfg.k_support, cfg.k_query,
                          generator(cfg.seed + replicate, f"{variant}/train"))  # fmt: skip
    theta, log = meta_train(model, cfg, batches, mse, 100, variant, device=device)
    ckpt = Checkpoint(
        method=variant,
        sizes=model.sizes,
        inputs="x",
        step_sizes={k: cfg.inner_lr for k in params.adaptation.shots},
        params=theta,
        config=to_dict(cfg)
        | {"model": to_dict(params.model), "sinusoid": to_dict(params.sinusoid), "replicate": replicate},  # fmt: skip
        info={"final_meta_loss": log.loss[-1]},
    )
    return ckpt, log
