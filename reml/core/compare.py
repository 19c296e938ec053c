"""How every report compares two results: one vocabulary for all three families.

A result is a mean and the half-width of its 95% CI, ``None`` where either is not finite (a run that
diverged on some task). ``a`` is "higher than" or "lower than" ``b`` only when their 95% CIs do not
overlap, and "level with" it when they do. A paired difference (the same tasks and, in RL, the same
noise) is "higher" or "lower" when its own 95% CI excludes 0. Where a value is not finite the two are
"not comparable": no verdict is ever drawn from a diverged mean.

A mean can also blow up and stay finite (a fine-tune that exploded on a few tasks without overflowing:
3.9e26 where no adaptation scores 3). :func:`blowup_limit` is the one rule for that, the figures' and the
tables': a finite mean above ``BLOWUP`` times the worst finite mean before adaptation of its setting is
shown as blown up, with its median, and is not compared either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

Result = tuple[float | None, float | None]  # (mean, ci95); None where not finite
Relation = Literal["higher", "lower", "level"]


BLOWUP = 10.0  # a mean above this many times the worst mean before adaptation has blown up


def blowup_limit(step0_means: Sequence[float | None]) -> float:
    """The highest mean that has not blown up: ``BLOWUP`` x the worst finite positive step-0 mean of the
    setting (the scores of no adaptation at all); inf where there is none."""
    finite_means = [v for v in step0_means if v is not None and math.isfinite(v) and v > 0]
    return BLOWUP * max(finite_means) if finite_means else math.inf


def finite(result: Result) -> bool:
    return all(v is not None and math.isfinite(v) for v in result)


def relation(a: Result, b: Result) -> Relation | None:
    """How ``a`` stands against ``b``; None if either is not finite."""
    if not (finite(a) and finite(b)):
        return None
    (ma, ca), (mb, cb) = a, b
    if ma - ca > mb + cb:
        return "higher"
    if ma + ca < mb - cb:
        return "lower"
    return "level"


def words(rel: Relation | None, name: str, shown: str) -> str:
    """The verdict in the reports' words, with ``shown`` (the other side's value) in brackets."""
    if rel is None:
        return f"not comparable with {name} ({shown}; not finite on some tasks)"
    phrase = {"higher": "higher than", "lower": "lower than", "level": "level with"}[rel]
    return f"{phrase} {name} ({shown})"


def versus(a: Result, b: Result, name: str, shown: str) -> str:
    """``a`` against ``b`` (named ``name``, displayed as ``shown``)."""
    return words(relation(a, b), name, shown)


def paired(difference: Result, name: str) -> str:
    """A paired difference against ``name``: higher or lower when its 95% CI excludes 0."""
    if not finite(difference):
        return words(None, name, "the difference")
    mean, ci = difference
    return words(relation(difference, (0.0, 0.0)), name, f"{mean:+.2f} ± {ci:.2f}")
