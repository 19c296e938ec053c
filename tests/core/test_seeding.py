"""Importing reml pins the CPU code paths whose rounding differs between processors (reml/__init__.py,
reml.core.seeding)."""

import os
import subprocess
import sys

import pytest

PINS = ("MKL_CBWR", "ATEN_CPU_CAPABILITY")


def run_python(code: str) -> subprocess.CompletedProcess:
    """A fresh interpreter whose environment has none of the pins (the test process has them from reml)."""
    env = {k: v for k, v in os.environ.items() if k not in PINS}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_importing_reml_pins_mkl_aten_and_onednn():
    out = run_python(
        "import torch, os, reml\n"
        "from reml.core.seeding import configure_torch\n"
        "configure_torch()\n"
        "print(os.environ['MKL_CBWR'], torch.backends.cpu.get_cpu_capability(), torch.backends.mkldnn.enabled)"
    )
    assert out.returncode == 0, out.stderr
    mkl, capability, mkldnn = out.stdout.split()
    assert mkl == "COMPATIBLE" and capability in ("AVX2", "DEFAULT") and mkldnn == "False"


def test_a_tensor_operation_before_importing_reml_is_an_error():
    best = run_python("import torch; print(torch.backends.cpu.get_cpu_capability())").stdout.strip()
    if best in ("AVX2", "DEFAULT"):
        pytest.skip(f"this CPU's best torch kernels are {best}: the pin cannot be bypassed here")
    out = run_python(
        "import torch\ntorch.ones(64).sum()\nfrom reml.core.seeding import configure_torch\nconfigure_torch()"
    )
    assert out.returncode != 0 and "before `import reml`" in out.stderr, out.stderr
