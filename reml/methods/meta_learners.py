"""One entry point for the supervised meta-learners: the settings decide which algorithm trains.

``maml`` and ``fomaml`` are :class:`~reml.methods.config.MamlConfig` (``first_order`` tells them
apart), ``reptile`` a :class:`~reml.methods.config.ReptileConfig`; every family that meta-trains on
a :class:`~reml.core.tasks.TaskSet` distribution (sinusoids, classification) calls :func:`meta_train`.
"""

from __future__ import annotations

import torch

from reml.core.harness import Loss
from reml.core.nets import Network, Weights, on_device
from reml.core.traininglog import TrainingLog, training_loop
from reml.methods.config import MamlConfig, ReptileConfig
from reml.methods.maml import Maml, MetaBatches, MetaGradient
from reml.methods.reptile import Reptile


def meta_train(
    model: Network,
    cfg: MamlConfig | ReptileConfig,
    batches: MetaBatches,
    loss: Loss,
    log_every: int,
    desc: str,
    *,
    device: torch.device,
    meta_gradient: MetaGradient | None = None,
) -> tuple[Weights, TrainingLog]:
    """Meta-train ``model`` from its initialisation, drawn from the batches' generator before any task,
    for ``cfg.iterations`` meta-updates of a fresh meta-batch each; the log's column is ``meta_loss``,
    the post-adaptation query loss of the training tasks.

    The initialisation and every meta-batch are drawn on the CPU (the same numbers on every device) and
    moved to ``device``, where the meta-updates run; the returned weights are on ``device``.
    ``meta_gradient``: MAML's implementation (vmapped by default; see :class:`~reml.methods.maml.Maml`)."""
    init = on_device(model.init(batches.generator), device)
    if isinstance(cfg, ReptileConfig):
        learner: Maml | Reptile = Reptile(model, init, cfg, loss)
    else:
        learner = Maml(model, init, cfg, loss, meta_gradient)
    log = training_loop(
        cfg.iterations,
        lambda it: learner.step(batches.sample().to(device), it),
        TrainingLog("meta_loss", every=log_every),
        desc,
    )
    return learner.weights(), log
