"""Unrelated task families for research question 3: hand-checked formulas, ranges, determinism."""

import math

import torch

from reml.seeding import generator
from reml.tasks.families import UNRELATED_FAMILIES


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
