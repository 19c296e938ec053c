"""How the reports compare two results: "above" / "below" only when their 95% CIs do not overlap."""

from __future__ import annotations

from collections.abc import Callable

Result = tuple[float | None, float | None]  # (mean, ci95); None where a value is not finite


def ci_versus(a: Result, b: Result, name: str, show: Callable[..., str], unavailable: str) -> str:
    """``a`` against ``b``, named ``name``; ``show(mean, ci)`` formats ``b``; ``unavailable`` explains
    why there is no comparison when either result has a missing (non-finite) value."""
    if None in a or None in b:
        return f"not comparable with {name} ({unavailable})"
    if a[0] - a[1] > b[0] + b[1]:
        return f"above {name} ({show(*b)})"
    if a[0] + a[1] < b[0] - b[1]:
        return f"below {name} ({show(*b)})"
    return f"no clear difference from {name} ({show(*b)})"
