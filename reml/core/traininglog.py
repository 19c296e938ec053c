"""Training loops and their curves: a loss averaged over windows of iterations, written as a CSV (a DVC plot)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from reml.core.io import write_text
from reml.core.nets import Weights


@dataclass
class TrainingLog:
    """Mean of ``loss`` over each window of ``every`` iterations; the last window may be shorter."""

    column: str  # what the loss is, e.g. "train_mse" or "meta_loss" (the CSV header)
    every: int = 100
    iterations: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    _window: list[float] = field(default_factory=list, repr=False, compare=False)

    def add(self, iteration: int, loss: float, last: bool = False) -> bool:
        """Record one iteration's loss; return True when a window was closed (time to show progress)."""
        self._window.append(loss)
        if iteration % self.every and not last:
            return False
        self.iterations.append(iteration)
        self.loss.append(sum(self._window) / len(self._window))
        self._window = []
        return True

    def write(self, path: str | Path) -> None:
        """CSV with columns ``iteration, <column>``."""
        rows = (f"{i},{v:.6g}" for i, v in zip(self.iterations, self.loss, strict=True))
        write_text(path, "\n".join([f"iteration,{self.column}", *rows]) + "\n")


def training_loop(iterations: int, step: Callable[[int], float], log: TrainingLog, desc: str) -> TrainingLog:
    """Call ``step(iteration)`` for iterations 1..N under a progress bar, logging the loss it returns."""
    progress = tqdm(range(1, iterations + 1), desc=desc, mininterval=2.0, unit="it")
    for it in progress:
        if log.add(it, step(it), last=it == iterations):
            progress.set_postfix({log.column: f"{log.loss[-1]:.4f}"}, refresh=False)
    return log


def train_adam(
    init: Weights,
    batch_loss: Callable[[Weights], Tensor],
    lr: float,
    iterations: int,
    log: TrainingLog,
    desc: str,
) -> tuple[Weights, TrainingLog]:
    """Minimise ``batch_loss(params)`` (a fresh batch drawn inside it every call) with Adam from ``init``,
    logging the loss; returns the final parameters (detached) and the log."""
    params = {k: v.requires_grad_() for k, v in init.items()}
    optimizer = torch.optim.Adam(params.values(), lr=lr)

    def step(_: int) -> float:
        loss = batch_loss(params)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    log = training_loop(iterations, step, log, desc)
    return {k: v.detach() for k, v in params.items()}, log
