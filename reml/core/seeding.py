"""Explicit randomness: every random draw goes through a ``torch.Generator`` made here.

A generator is keyed by (seed, stream), so that two purposes given the same seed (say the test set and
a baseline's training tasks, both with seed 0) still draw unrelated numbers: equal seeds must never
make a method train on the test tasks.
"""

from __future__ import annotations

import hashlib
import os

import torch


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for the named stream, derived from ``seed`` by SHA-256."""
    digest = hashlib.sha256(f"{stream}:{seed}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def configure_torch(threads: int = 1) -> None:
    """Pin the things that make CPU results vary between runs or machines.

    One intra-op thread keeps floating-point reductions in the same order whatever the core count, so
    the committed metrics are bit-identical on a 2-core CI box and on a 64-core workstation; the
    networks here are small enough that threads buy little. oneDNN (``mkldnn``) is switched off: its
    convolution kernels are chosen by instruction set and cache size, so they round differently from
    one processor to the next; without it convolutions run as im2col + MKL matrix products, which
    ``MKL_CBWR`` (set on importing :mod:`reml`) makes identical everywhere, at about 20% more time
    for the classification stages. The ATen kernels must be the AVX2 ones that importing ``reml`` asks
    for; if torch already ran an operator before that import, they are not, and this says so.
    """
    wanted = os.environ.get("ATEN_CPU_CAPABILITY", "").upper()
    actual = torch.backends.cpu.get_cpu_capability()
    if wanted == "AVX2" and actual not in ("AVX2", "DEFAULT"):
        raise RuntimeError(
            f"torch runs its {actual} kernels although ATEN_CPU_CAPABILITY=avx2: a tensor operation ran before "
            "`import reml`; import reml (or any reml module) first, so that results match other machines"
        )
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.mkldnn.enabled = False
