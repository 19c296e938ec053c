"""How every report compares two results: one vocabulary for all three families.

A result is a mean and the half-width of its 95% CI, ``None`` where either is not finite (a run that
diverged on some task). ``a`` is "higher than" or "lower than" ``b`` only when their 95% CIs do not
overlap, and "level with" it when they do. A paired difference (the same tasks and, in RL, the same
noise) is "higher" or "lower" when its own 95% CI excludes 0. Where a value is not finite the two are
"not comparable": no verdict is ever drawn from a diverged mean.
"""

from __future__ import annotations

import math
from typing import Literal

Result = tuple[float | None, float | None]  # (mean, ci95); None where not finite
Relation = Literal["higher", "lower", "level"]


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
