"""Training loops and their curves: a loss averaged over windows of iterations, written as a CSV (a DVC plot).

A step may return its loss as a 0-d tensor on any device: the log keeps the window's tensors and reads
them back to Python floats once per window (one host sync per ``every`` iterations on a GPU, not one per
iteration), giving exactly the floats ``loss.item()`` would.
"""

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
    _window: list[float | Tensor] = field(default_factory=list, repr=False, compare=False)

    def add(self, iteration: int, loss: float | Tensor, last: bool = False) -> bool:
        """Record one iteration's loss (a float, or a 0-d tensor, read only when the window closes);
        return True when a window was closed (time to show progress)."""
        self._window.append(loss.detach() if isinstance(loss, Tensor) else loss)
        if iteration % self.every and not last:
            return False
        window = as_floats(self._window)
        self.iterations.append(iteration)
        self.loss.append(sum(window) / len(window))
        self._window = []
        return True

    def write(self, path: str | Path) -> None:
        """CSV with columns ``iteration, <column>``."""
        rows = (f"{i},{v:.6g}" for i, v in zip(self.iterations, self.loss, strict=True))
        write_text(path, "\n".join([f"iteration,{self.column}", *rows]) + "\n")


def as_floats(values: list[float | Tensor]) -> list[float]:
    """Python floats of ``values``; 0-d tensors are stacked and read back in one transfer."""
    if not any(isinstance(v, Tensor) for v in values):
        return list(values)  # type: ignore[arg-type]
    if all(isinstance(v, Tensor) for v in values):
        return torch.stack(values).tolist()  # type: ignore[arg-type]
    return [float(v) for v in values]


def training_loop(iterations: int, step: Callable[[int], float | Tensor], log: TrainingLog, desc: str) -> TrainingLog:
    """Call ``step(iteration)`` for iterations 1..N under a progress bar, logging the loss it returns
    (a float, or a 0-d tensor, so that a GPU loop need not wait for each loss: see :class:`TrainingLog`)."""
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
    logging the loss; returns the final parameters (detached) and the log. Runs on the device of
    ``init``; the loss stays there (no host sync per step)."""
    params = {k: v.requires_grad_() for k, v in init.items()}
    optimizer = torch.optim.Adam(params.values(), lr=lr)

    def step(_: int) -> Tensor:
        loss = batch_loss(params)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    log = training_loop(iterations, step, log, desc)
    return {k: v.detach() for k, v in params.items()}, log
