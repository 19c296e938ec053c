"""What a REML agent is measured against on its own pool: does choosing the layers matter?

- ``reml_random``: every task gets a uniformly random valid composition (an input layer, distinct hidden
  layers, an output layer), drawn from a generator that never sees the task;
- ``reml_fixed``: every task gets the one composition the agent chose most often on validation tasks.

Both take the trained pool as it is, so the only difference from the agent's row is the choice of layers.
Family-agnostic: any :class:`~reml.methods.reml.env.CompositionEnv` builds the networks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

from reml.methods.reml.pool import LayerPool

ABLATIONS = ("reml_random", "reml_fixed")


def random_compositions(pool: LayerPool, n_slots: int, n: int, generator: torch.Generator) -> list[list[int]]:
    """``n`` compositions of ``n_slots`` layers, each uniform over the valid ones (drawn on the CPU)."""
    inputs, hidden, outputs = (list(pool.indices(kind)) for kind in ("input", "hidden", "output"))
    if n_slots - 2 > len(hidden):
        raise ValueError(f"{n_slots - 2} hidden slots but the pool has {len(hidden)} hidden layers")
    out = []
    for _ in range(n):
        first = inputs[int(torch.randint(len(inputs), (), generator=generator))]
        middle = [hidden[int(i)] for i in torch.randperm(len(hidden), generator=generator)[: n_slots - 2]]
        last = outputs[int(torch.randint(len(outputs), (), generator=generator))]
        out.append([first, *middle, last])
    return out


def most_chosen(layers: Sequence[Sequence[int]]) -> list[int]:
    """The composition that occurs most often in ``layers`` (ties: the smallest, so the result is unique)."""
    if not layers:
        raise ValueError("no compositions to choose from")
    counts = Counter(tuple(x) for x in layers)
    top = max(counts.values())
    return list(min(c for c, n in counts.items() if n == top))
