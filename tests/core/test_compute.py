"""The ``compute`` section: validated, resolved to a device with a clear error, recorded in the report."""

import pytest
import torch

from reml.core import compute
from reml.core.config import ComputeConfig, ConfigError


def test_cpu_is_the_default_and_what_old_params_files_ran_on():
    assert compute.parse({}) == ComputeConfig("cpu", 1)
    assert compute.resolve(compute.parse({"compute": {"device": "cpu", "threads": 2}})) == torch.device("cpu")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"device": "gpu", "threads": 1}, "compute.device: got 'gpu'; allowed: ['cpu', 'cuda', 'auto']"),
        ({"device": "cpu", "threads": 0}, "compute.threads: must be an integer in [1, 1024], got 0"),
        ({"device": "cpu", "threads": 1.5}, "compute.threads: expected an integer, got 1.5"),
        ({"device": "cpu"}, "compute.threads: missing"),
    ],
)
def test_bad_sections_are_named(section, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        compute.parse({"compute": section})


def test_cuda_without_a_gpu_says_how_to_get_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"compute.device: cuda was asked for but .*(CPU build|sees no GPU)"):
        compute.resolve(ComputeConfig("cuda", 1))
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ConfigError, match=r"make repro TORCH=cuda"):
        compute.resolve(ComputeConfig("cuda", 1))
    assert compute.resolve(ComputeConfig("auto", 1)) == torch.device("cpu")  # auto falls back, no error
    # the report, made where there is no GPU (a login node), says what was asked for instead of failing
    assert compute.recorded(ComputeConfig("cuda", 1)).startswith("cuda, 1 torch thread(s) (not checked")
    assert compute.recorded(ComputeConfig("cpu", 1)) == compute.describe(torch.device("cpu"), 1)


def test_auto_takes_the_gpu_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert compute.resolve(ComputeConfig("auto", 1)) == torch.device("cuda")
    assert compute.resolve(ComputeConfig("cuda", 1)) == torch.device("cuda")


def test_the_report_line_names_the_processor_and_threads():
    line = compute.describe(torch.device("cpu"), 1)
    assert line.startswith("cpu (") and "1 torch thread," in line and torch.__version__ in line
    assert compute.cpu_name() in line and compute.cpu_name()
    assert "2 torch threads" in compute.describe(torch.device("cpu"), 2)
