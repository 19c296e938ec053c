"""reml-bench: ``core`` (knows no family), ``methods`` (algorithms shared by families), ``families``
(sinusoid, classification, rl); docs/architecture.md has the map.

Importing it pins the CPU code paths whose floating-point results differ between processors, so that
results depend as little as possible on the machine (see :func:`reml.core.seeding.configure_torch`; they
still differ between CPU types, e.g. Intel Xeon and AMD EPYC: docs/protocol.md). Both variables are read
lazily, at torch's first operator and MKL's first call, so this works as long as no tensor
computation ran before ``reml`` was imported; a value already in the environment is left alone.

- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility, one code path for every
  processor (otherwise MKL picks AVX2, AVX-512 or AMX kernels by CPU, which round differently);
- ``ATEN_CPU_CAPABILITY=avx2``: torch's vectorised kernels (sums, exp, random normals) in their AVX2
  version, also on AVX-512 machines.
"""

import os

os.environ.setdefault("MKL_CBWR", "COMPATIBLE")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
