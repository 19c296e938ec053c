"""Where the torch stages run: the ``compute`` section of params.yaml (docs/compute.md).

``device`` is ``cpu`` (the default, and the only one whose results are committed), ``cuda`` (an error
naming the fix if this torch has no usable GPU) or ``auto`` (``cuda`` when there is one). ``threads`` is
torch's intra-op thread count for each stage. Random draws never depend on the device: every generator
of :mod:`reml.core.seeding` is a CPU generator, so the tasks, minibatches and initialisations are the same
numbers everywhere and only the arithmetic moves. The stage entry point (:func:`reml.core.stage.main`)
reads the section, calls :func:`configure` once, and hands the resolved ``torch.device`` to the stage.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from reml.core.config import CPU_ONLY, ComputeConfig, ConfigError, from_dict, read_yaml

# cuBLAS picks reduction orders by workspace unless this is set before its first call; with it (and
# torch's deterministic algorithms) a CUDA run gives the same bits twice on one GPU model.
CUBLAS_WORKSPACE = ":4096:8"


def parse(data: dict[str, Any]) -> ComputeConfig:
    """The ``compute`` section of a params mapping, validated (absent: the CPU, one thread, which is what
    every run made before the section existed used)."""
    return from_dict(ComputeConfig, data.get("compute", CPU_ONLY), "compute")


def load(path: str | Path) -> ComputeConfig:
    return parse(read_yaml(path))


def resolve(cfg: ComputeConfig) -> torch.device:
    """The device ``cfg`` asks for on this machine; ``cuda`` without a usable GPU is a ConfigError."""
    if cfg.device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if cfg.device == "auto":
        return torch.device("cpu")
    if torch.version.cuda is None:
        why = f"this torch ({torch.__version__}) is the CPU build; install the CUDA build with `make repro TORCH=cuda`"
    else:
        why = f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU (driver, CUDA_VISIBLE_DEVICES?)"
    raise ConfigError(f"compute.device: cuda was asked for but {why}; or set compute.device: cpu or auto")


def configure(cfg: ComputeConfig) -> torch.device:
    """Resolve the device and pin what makes results vary on it; call once per process, before any
    tensor work. On CUDA: cuBLAS's fixed workspace, deterministic algorithms, no cuDNN autotuning and no
    TF32 (float32 matmuls and convolutions in full precision, as on the CPU)."""
    from reml.core.seeding import configure_torch  # seeding knows nothing of params

    device = resolve(cfg)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    configure_torch(cfg.threads)
    return device


def describe(device: torch.device, threads: int) -> str:
    """One line for the report: the device, its model name and the thread count."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"cuda ({name}, torch {torch.__version__}, CUDA {torch.version.cuda})"
    plural = "thread" if threads == 1 else "threads"
    return f"cpu ({cpu_name()}, {threads} torch {plural}, torch {torch.__version__})"


def recorded(cfg: ComputeConfig) -> str:
    """The report's line for ``cfg`` on this machine: :func:`describe` of the device it resolves to, or,
    where it asks for a GPU this machine lacks (a report made on a cluster's login node), what it asks for."""
    try:
        device = resolve(cfg)
    except ConfigError:
        return f"{cfg.device}, {cfg.threads} torch thread(s) (not checked: no GPU on the machine that made the report)"
    return describe(device, cfg.threads)


def cpu_name() -> str:
    """The processor's model name (results are bit-identical only per CPU type: docs/protocol.md)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


__all__ = ["ComputeConfig", "ConfigError", "configure", "describe", "load", "parse", "recorded", "resolve"]
