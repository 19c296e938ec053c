"""What stages train_classifier (fomaml, reptile: one run) and train_classifier_replicated (maml,
maml_matched: one run per replicate) share: meta-train one method for one N-way K-shot setting."""

from __future__ import annotations

import argparse
from collections.abc import Collection

from reml.core import stage
from reml.families.classification import baselines
from reml.families.classification.checkpoint import save_classifier
from reml.families.classification.config import ClassificationParams, load
from reml.families.classification.data import load_split


def run(args: argparse.Namespace, params: ClassificationParams, methods: Collection[str], name: str) -> None:
    """Check the matrix item (``methods``: the stage ``name``'s), train it and write the checkpoint and log."""
    cfg = params.classification
    stage.matrix_item("--method", args.method, methods, name)
    stage.matrix_item("--ways", args.ways, cfg.ways, "classification.ways")
    stage.matrix_item("--shots", args.shots, cfg.shots, "classification.shots")
    stage.matrix_item("--replicate", args.replicate, cfg.runs(args.method), "classification.replicates")
    train = load_split(args.data_dir, "train", cfg)
    ckpt, log = baselines.meta_learner(cfg, args.method, args.ways, args.shots, train, args.replicate,
                                       device=args.device)  # fmt: skip
    print(f"{args.method} (replicate {args.replicate}): final training loss {log.loss[-1]:.4f}")
    stage.write_trained(save_classifier, ckpt, log, args)


def main(doc: str | None, methods: Collection[str], name: str) -> None:
    stage.main(lambda args, params: run(args, params, methods, name), doc, load, "method", "data_dir", "out",
               "log_out", ways=int, shots=int, replicate=int)  # fmt: skip
