"""The classification methods other than REML (Finn et al. 2017, Sec. 5.2), each a checkpoint for the harness.

- ``scratch``: a fresh network for each N-way K-shot setting (drawn at evaluation);
- ``pretrained``: one network trained to classify every meta-train class at once; at test its N-way
  head is replaced by a fresh (zero) one and the whole network is fine-tuned on the support images
  like every other method;
- ``maml``, ``fomaml``, ``reptile``: meta-trained for one N-way K-shot setting, by the same code as for
  sinusoids (:mod:`reml.methods.meta_learners`) with the cross-entropy loss; their inner α is also
  their test-time step size.

Devices: the training entry points take the ``device`` they train on. Initialisations, batches and
episodes are drawn on the CPU from CPU generators (the class pools stay there) and moved to ``device``.
"""

from __future__ import annotations

import dataclasses

import torch

from reml.core.config import to_dict
from reml.core.nets import Weights, on_device
from reml.core.seeding import generator
from reml.core.traininglog import TrainingLog, train_adam
from reml.families.classification.checkpoint import ClassifierCheckpoint
from reml.families.classification.config import ClassificationConfig
from reml.families.classification.nets import ConvNet, MlpNet, cross_entropy
from reml.families.classification.tasks import ClassPool, EpisodeDistribution
from reml.methods.maml import MetaBatches, MetaGradient, maml_meta_gradient, maml_meta_gradient_loop
from reml.methods.meta_learners import meta_train


def train_classifier(
    model: ConvNet | MlpNet,
    pool: ClassPool,
    iterations: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    log_every: int = 100,
    *,
    device: torch.device,
) -> tuple[Weights, TrainingLog]:
    """Adam on the cross-entropy of random (class, instance) batches, on ``device``; ``model.n_out`` =
    ``pool.n_classes``. Each batch is drawn and gathered from the pool on the CPU, then moved."""
    if model.n_out != pool.n_classes:
        raise ValueError(f"the head has {model.n_out} outputs for {pool.n_classes} classes")

    def batch_loss(params: Weights) -> torch.Tensor:
        classes = torch.randint(pool.n_classes, (batch_size,), generator=generator)
        instances = torch.randint(pool.n_instances, (batch_size,), generator=generator)
        images = pool.images[classes, instances].to(device)
        return cross_entropy(model(params, images), classes.to(device))

    log = TrainingLog("train_loss", every=log_every)
    return train_adam(on_device(model.init(generator), device), batch_loss, lr, iterations, log, "pretrained")


def pretrained(
    cfg: ClassificationConfig,
    train: ClassPool,
    method: str = "pretrained",
    replicate: int = 0,
    *,
    device: torch.device,
) -> tuple[ClassifierCheckpoint, TrainingLog]:
    """The ``pretrained`` (or ``pretrained_matched``: REML's number of labelled images) classifier over
    every meta-train class (one for all settings), trained on ``device`` with its section's seed + ``replicate``."""
    p = dataclasses.replace(getattr(cfg, method), seed=getattr(cfg, method).seed + replicate)
    model = cfg.network(train.n_classes)
    rng = generator(p.seed, "cls/pretrained")
    trained, log = train_classifier(model, train, p.iterations, p.batch_size, p.lr, rng, device=device)
    return ClassifierCheckpoint(method, train.n_classes, trained, {}, to_dict(p)), log


def meta_learner(
    cfg: ClassificationConfig,
    method: str,
    ways: int,
    shots: int,
    train: ClassPool,
    replicate: int = 0,
    *,
    device: torch.device,
) -> tuple[ClassifierCheckpoint, TrainingLog]:
    """``maml``, ``fomaml``, ``reptile`` or ``maml_matched`` (MAML at REML's number of episodes)
    meta-trained on ``device`` on N-way K-shot episodes of the meta-train split (drawn on the CPU, moved
    per meta-batch), with its section's seed + ``replicate``."""
    m = cfg.meta_learner(method, ways)
    m = dataclasses.replace(m, seed=m.seed + replicate)
    rng = generator(m.seed, f"cls/{method}/{ways}w{shots}s")
    batches = MetaBatches(EpisodeDistribution(train, ways), m.meta_batch, shots, cfg.n_query, rng)
    model = cfg.network(ways)
    trained, log = meta_train(model, m, batches, cross_entropy, max(m.iterations // 50, 1),
                              f"{method} {ways}w{shots}s", device=device,
                              meta_gradient=meta_gradient_for(model, device))  # fmt: skip
    return ClassifierCheckpoint(method, ways, trained, {shots: m.inner_lr}, to_dict(m)), log


# From this many filters up, the per-task loop computes conv MAML's meta-gradient faster than vmap on the
# CPU: vmap turns per-task conv weights into grouped convolutions, which the CPU kernels run less well
# (1 thread, meta-batch 8: vmap 1.09x faster at 16 filters, the loop 1.12x at 32 and 1.51x at 64;
# benchmarks/test_classification_speed.py, docs/benchmarks.md). The two agree to float64 precision.
LOOP_FROM_FILTERS = 32


def meta_gradient_for(model: ConvNet | MlpNet, device: torch.device) -> MetaGradient:
    """The faster MAML meta-gradient for ``model`` on ``device``: the loop for wide conv nets on the CPU,
    vmap otherwise (on a GPU, batching the tasks is the point of vmap; not measured here)."""
    if device.type == "cpu" and isinstance(model, ConvNet) and model.filters >= LOOP_FROM_FILTERS:
        return maml_meta_gradient_loop
    return maml_meta_gradient


def fresh_head(params: Weights, head_slot: int, n_way: int) -> Weights:
    """The body of ``params`` with a zero N-way head in slot ``head_slot`` (every class starts equal), on
    the device of ``params``."""
    body = {k: v for k, v in params.items() if not k.startswith(f"{head_slot}.")}
    old = params[f"{head_slot}.weight"]
    n_features, device = old.shape[1], old.device
    zeros = {f"{head_slot}.weight": torch.zeros(n_way, n_features, device=device),
             f"{head_slot}.bias": torch.zeros(n_way, device=device)}  # fmt: skip
    return body | zeros
