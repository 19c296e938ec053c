"""Tables and templates for ``dvc plots show`` / ``dvc plots diff``: one comparison plot per family.

The report's figures are matplotlib PNGs; DVC draws its own plots (Vega-Lite) from CSV files. Each
family's figure stage also writes ``<reports_dir>/plots/<family>.csv`` in long form, one row per
(setting, method, step): ``mean``, the 95% CI's ``low`` and ``high``, and ``diverged`` (the mean is
inf or NaN). The templates in ``.dvc/plots/`` draw one panel per setting, one line per method with
its CI band, the same colour per method as the figures (:data:`reml.core.figures.METHOD_ORDER`),
a dashed line per compared revision, and a triangle at the top of the panel for a diverged point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

# (setting, method, column of the means, column of the 95% CI half-widths) of a wide curves table
Column = tuple[str, str, str, str]


def long_table(curves: pd.DataFrame, columns: Iterable[Column]) -> pd.DataFrame:
    """The long form of a wide curves table (``step`` plus the listed columns)."""
    rows, order = [], {}
    for setting, method, mean_col, ci_col in columns:
        order.setdefault(setting, len(order))  # the panels' order (a template cannot sort "K = 5" before "K = 10")
        for step, mean, ci in zip(curves["step"], curves[mean_col], curves[ci_col], strict=True):
            finite = math.isfinite(mean)
            rows.append({
                "setting": setting, "order": order[setting], "method": method, "step": int(step),
                "mean": round(float(mean), 6) if finite else None,
                "low": round(float(mean - ci), 6) if finite and math.isfinite(ci) else None,
                "high": round(float(mean + ci), 6) if finite and math.isfinite(ci) else None,
                "diverged": not finite,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["setting", "order", "method", "step", "mean", "low", "high", "diverged"])
