"""The sinusoid task family (formula, ranges, seeding, the K-shot view, the task-set file) and the
unrelated families of research question 3 (hand-checked formulas, ranges, determinism)."""

import math

import pytest
import torch

from reml.core.io import ArtifactError
from reml.core.seeding import generator
from reml.core.tasks import load_taskset, save_taskset
from reml.families.sinusoid.tasks import UNRELATED_FAMILIES, SinusoidDistribution, sinusoid


def test_formula_by_hand():
    # y = A sin(x - phi)
    assert sinusoid(torch.tensor(math.pi / 2), torch.tensor(2.0), torch.tensor(0.0)).item() == pytest.approx(2.0)
    assert sinusoid(torch.tensor(1.0), torch.tensor(3.0), torch.tensor(1.0)).item() == pytest.approx(0.0)
    assert sinusoid(torch.tensor(0.0), torch.tensor(1.5), torch.tensor(math.pi / 2)).item() == pytest.approx(-1.5)


def test_samples_lie_in_the_configured_ranges():
    dist = SinusoidDistribution(amplitude=(0.1, 5.0), phase=(0.0, math.pi), x_range=(-5.0, 5.0))
    tasks = dist.sample(2000, 10, 7, generator(0, "test"))
    amplitude, phase = tasks.task_params[:, 0], tasks.task_params[:, 1]
    assert 0.1 <= amplitude.min() and amplitude.max() <= 5.0
    assert 0.0 <= phase.min() and phase.max() <= math.pi
    assert amplitude.max() - amplitude.min() > 4.5  # actually spans the range, not a constant
    for x in (tasks.support_x, tasks.query_x):
        assert -5.0 <= x.min() and x.max() <= 5.0
    assert tasks.support_x.shape == (2000, 10, 1) and tasks.query_x.shape == (2000, 7, 1)
    expected = amplitude.view(-1, 1, 1) * torch.sin(tasks.support_x - phase.view(-1, 1, 1))
    torch.testing.assert_close(tasks.support_y, expected)


def test_same_seed_same_tasks_and_streams_are_independent():
    dist = SinusoidDistribution()
    a = dist.sample(5, 3, 3, generator(0, "sinusoid/test"))
    b = dist.sample(5, 3, 3, generator(0, "sinusoid/test"))
    c = dist.sample(5, 3, 3, generator(0, "sinusoid/val"))
    assert torch.equal(a.task_params, b.task_params) and torch.equal(a.query_x, b.query_x)
    assert not torch.isclose(a.task_params, c.task_params).any()  # same seed, other stream: no shared task


def test_with_shots_takes_the_first_k_support_points():
    tasks = SinusoidDistribution().sample(4, 20, 5, generator(1, "test"))
    five = tasks.with_shots(5)
    assert torch.equal(five.support_x, tasks.support_x[:, :5])
    assert torch.equal(five.query_y, tasks.query_y)  # the query set never changes with K
    with pytest.raises(ValueError, match="K = 21 is outside"):
        tasks.with_shots(21)


def test_taskset_round_trip_and_clear_errors(tmp_path):
    tasks = SinusoidDistribution().sample(3, 4, 5, generator(2, "test"))
    path = tmp_path / "tasks.safetensors"
    save_taskset(path, tasks)
    loaded = load_taskset(path)
    assert loaded.param_names == ("amplitude", "phase")
    assert torch.equal(loaded.support_y, tasks.support_y)
    with pytest.raises(ArtifactError, match=r"missing\.safetensors: not found.*dvc repro generate_tasks"):
        load_taskset(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ArtifactError, match=r"bad\.safetensors: not a valid task set"):
        load_taskset(tmp_path / "bad.safetensors")


# --------------------------------------------------------------------------- unrelated families (RQ3)


def test_formulas_by_hand():
    x = torch.tensor([[[2.0]]])
    fam = UNRELATED_FAMILIES
    assert fam["lines"].evaluate(torch.tensor([[0.5, -1.0]]), x).item() == 0.0  # 0.5·2 − 1
    assert fam["quadratics"].evaluate(torch.tensor([[0.25, -0.5, 1.0]]), x).item() == 1.0  # 0.25·4 − 1 + 1
    big = fam["sinusoid_large_amplitude"].evaluate(torch.tensor([[6.0, 0.5]]), x).item()
    assert math.isclose(big, 6.0 * math.sin(1.5), rel_tol=1e-6)
    fast = fam["sinusoid_double_frequency"].evaluate(torch.tensor([[2.0, 1.0]]), x).item()
    assert math.isclose(fast, 2.0 * math.sin(3.0), rel_tol=1e-6)


def test_samples_respect_ranges_and_are_deterministic():
    for name, family in UNRELATED_FAMILIES.items():
        a = family.sample(50, 7, 11, generator(0, f"unrelated/{name}"))
        b = family.sample(50, 7, 11, generator(0, f"unrelated/{name}"))
        assert torch.equal(a.query_y, b.query_y) and a.support_x.shape == (50, 7, 1) and a.query_y.shape == (50, 11, 1)
        for column, (_, low, high) in enumerate(family.ranges):
            assert low <= a.task_params[:, column].min() and a.task_params[:, column].max() <= high
        assert torch.equal(a.support_y, family.evaluate(a.task_params, a.support_x))
        assert a.support_x.min() >= -5 and a.support_x.max() <= 5 and a.metadata == {"family": name}
