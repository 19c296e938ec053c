"""The ``pretrained`` classification baseline (Finn et al. 2017, Sec. 5.2): one network trained to
classify every meta-train class at once; at test its N-way head is replaced by a fresh (zero) one and
the whole network is fine-tuned on the support images like every other method."""

from __future__ import annotations

import torch

from reml.convnet import ConvNet, MlpNet, cross_entropy
from reml.nets import Params
from reml.tasks.images import ClassPool
from reml.traininglog import TrainingLog, training_loop


def train_classifier(
    model: ConvNet | MlpNet,
    pool: ClassPool,
    iterations: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    log_every: int = 100,
) -> tuple[Params, TrainingLog]:
    """Adam on the cross-entropy of random (class, instance) batches; ``model.n_out`` = ``pool.n_classes``."""
    if model.n_out != pool.n_classes:
        raise ValueError(f"the head has {model.n_out} outputs for {pool.n_classes} classes")
    params = {k: v.requires_grad_() for k, v in model.init(generator).items()}
    optimizer = torch.optim.Adam(params.values(), lr=lr)

    def step(_: int) -> float:
        classes = torch.randint(pool.n_classes, (batch_size,), generator=generator)
        instances = torch.randint(pool.n_instances, (batch_size,), generator=generator)
        loss = cross_entropy(model(params, pool.images[classes, instances]), classes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    log = training_loop(iterations, step, TrainingLog("train_loss", every=log_every), "pretrained")
    return {k: v.detach() for k, v in params.items()}, log


def fresh_head(params: Params, head_slot: int, n_way: int) -> Params:
    """The body of ``params`` with a zero N-way head in slot ``head_slot`` (every class starts equal)."""
    body = {k: v for k, v in params.items() if not k.startswith(f"{head_slot}.")}
    n_features = params[f"{head_slot}.weight"].shape[1]
    return body | {f"{head_slot}.weight": torch.zeros(n_way, n_features), f"{head_slot}.bias": torch.zeros(n_way)}
