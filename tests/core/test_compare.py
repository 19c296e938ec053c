"""The reports' one vocabulary for comparing two results (reml.core.compare)."""

import math

from reml.core.compare import paired, relation, versus


def test_ci_overlap_decides_higher_lower_or_level():
    assert relation((3.0, 0.5), (1.0, 0.5)) == "higher"  # 2.5 > 1.5
    assert relation((1.0, 0.5), (3.0, 0.5)) == "lower"
    assert relation((2.0, 0.6), (1.0, 0.5)) == "level"  # 1.4 < 1.5: the CIs overlap
    assert versus((3.0, 0.5), (1.0, 0.5), "scratch", "1.0 ± 0.5") == "higher than scratch (1.0 ± 0.5)"
    assert versus((2.0, 0.6), (1.0, 0.5), "maml", "x") == "level with maml (x)"


def test_no_verdict_from_a_non_finite_value():
    for a, b in (((math.inf, 0.1), (1.0, 0.1)), ((1.0, None), (1.0, 0.1)), ((None, None), (math.nan, 0.1))):
        assert relation(a, b) is None and relation(b, a) is None
    assert versus((1.0, 0.1), (math.inf, math.nan), "maml", "diverged") == (
        "not comparable with maml (diverged; not finite on some tasks)"
    )


def test_paired_differences_against_zero():
    assert paired((3.0, 1.0), "scratch") == "higher than scratch (+3.00 ± 1.00)"
    assert paired((-3.0, 1.0), "scratch") == "lower than scratch (-3.00 ± 1.00)"
    assert paired((0.5, 1.0), "pretrained") == "level with pretrained (+0.50 ± 1.00)"
    assert paired((None, 1.0), "pretrained").startswith("not comparable with pretrained")
