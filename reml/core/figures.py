"""What every family's figures share: a fixed colour and line style per method, and a saver.

The figures themselves are pure functions from tables to matplotlib figures, one module per family
(``reml/families/<family>/figures.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display is ever needed

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from reml.core.io import atomic_path, require_file  # noqa: E402

# Fixed colours per method, so a method looks the same in every figure of every family; methods not
# listed take the next colours in the order they are drawn.
METHOD_ORDER = (
    "scratch",
    "pretrained",
    "oracle",
    "maml",
    "fomaml",
    "reptile",
    "reml_ppo",
    "reml_maskable",
    "reml_lstm",
    "reml_ppo_oracle",
    "reml_maskable_oracle",
    "reml_lstm_oracle",
)


def line_style(method: str) -> str:
    """Dashed lines for every method that reads the true task parameters."""
    return "--" if method == "oracle" or method.endswith("_oracle") else "-"


def method_colors(methods: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    palette = sns.color_palette("tab10", n_colors=10) + sns.color_palette("Set2", n_colors=8)
    known = [m for m in METHOD_ORDER]
    extra = [m for m in methods if m not in known]
    return {m: palette[i % len(palette)] for i, m in enumerate(known + extra) if m in methods}


def save_png(fig: plt.Figure, path: str | Path, dpi: int) -> None:
    """Write a PNG atomically, without the matplotlib version stamp, so reruns give identical bytes."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def render_table(
    render: Callable[[pd.DataFrame, dict], plt.Figure], curves: str | Path, methods: str | Path, made_by: str
) -> plt.Figure:
    """``render(curves, methods)`` of an evaluation's curves CSV and methods JSON, both written by the
    stage ``made_by`` (the figure stages of the classification and meta-RL families)."""
    return render(pd.read_csv(require_file(curves, made_by)), json.loads(require_file(methods, made_by).read_text()))
