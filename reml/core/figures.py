"""What every family's figures share: a fixed colour and line style per method, and a saver.

The figures themselves are pure functions from tables to matplotlib figures, one module per family
(``reml/families/<family>/figures.py``)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display is ever needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from reml.core.compare import blowup_limit  # noqa: E402
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
    "maml_trpo",
    "scratch_deep",
    "pretrained_matched",
    "maml_matched",
    "maml_trpo_matched",
    "reml_random",
    "reml_fixed",
    "reml_maskable_meta_gradient",
    "reml_maskable_relative",
    "reml_maskable_sgd_inner",
)  # the colours follow this order in every figure, so a method keeps its colour across figures
DIVERGED_MARKER = dict(marker="^", s=70, edgecolor="black", linewidth=0.8, zorder=6)


def line_style(method: str) -> str:
    """Dashed lines for every method that reads the true task parameters."""
    return "--" if method in ("oracle", "oracle_finetuned") or method.endswith("_oracle") else "-"


def method_colors(methods: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    palette = (sns.color_palette("tab10", n_colors=10) + sns.color_palette("Set2", n_colors=8)
               + sns.color_palette("Dark2", n_colors=8))  # fmt: skip
    known = [m for m in METHOD_ORDER]
    extra = [m for m in methods if m not in known]
    return {m: palette[i % len(palette)] for i, m in enumerate(known + extra) if m in methods}


def log_limits(step0_means: Sequence[float], all_means: Sequence[float]) -> tuple[float, float]:
    """(bottom, top) of a log-scale MSE axis. A mean above 10 x the worst finite step-0 mean (no
    adaptation at all), inf or NaN is a diverged fine-tune, drawn as a marker at that top; if none
    diverged, the top is twice the highest mean. The bottom is half the lowest mean shown."""
    top = blowup_limit(step0_means)
    top = top if math.isfinite(top) else 1.0
    shown = [v for v in all_means if np.isfinite(v) and 0 < v <= top]
    if shown and len(shown) == len(all_means):  # nothing diverged: no room needed for markers
        top = min(top, 2 * max(shown))
    return (min(shown) / 2 if shown else top / 1e3), top


def positive_curve(ax: plt.Axes, x: Sequence[float], mean: Sequence[float], ci: Sequence[float],
                   limits: tuple[float, float], **line: object) -> int:  # fmt: skip
    """A positive score (an MSE) against ``x`` on a log axis with ``limits`` (:func:`log_limits`), with
    its 95% CI band. The band's lower edge is cut at the axis bottom (a negative MSE does not exist);
    points above the top or not finite are diverged: the line stops and a triangle at the top marks
    each. Returns how many were marked."""
    bottom, top = limits
    x, mean, ci = np.asarray(x, float), np.asarray(mean, float), np.asarray(ci, float)
    ok = np.isfinite(mean) & (mean <= top)
    mean, ci = np.where(ok, mean, top), np.where(np.isfinite(ci), ci, np.inf)
    ax.plot(x, np.where(ok, mean, np.nan), **line)
    low = np.where(ok, np.clip(mean - ci, bottom, None), np.nan)
    high = np.where(ok, np.minimum(mean + ci, top), np.nan)
    ax.fill_between(x, low, high, color=line.get("color"), alpha=0.15, linewidth=0)
    if (~ok).any():
        ax.scatter(x[~ok], np.full(int((~ok).sum()), top), color=line.get("color"), clip_on=False, **DIVERGED_MARKER)
    ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    return int((~ok).sum())


def diverged_handle(label: str = "diverged (inf, NaN or 10x no adaptation)") -> Line2D:
    """The legend entry of the diverged markers (:func:`positive_curve`)."""
    return Line2D([], [], linestyle="", marker="^", markersize=8, markerfacecolor="white", markeredgecolor="black",
                  label=label)  # fmt: skip


def bottom_legend(fig: plt.Figure, handles: Sequence, entry_width: float = 2.9) -> None:
    """A legend under the panels with as many columns as the figure's width holds (``entry_width`` inches
    an entry, enough for the longest method name), and the panels laid out above it, so that no entry is
    cut at the figure's edge."""
    ncol = max(1, min(len(handles), int(fig.get_figwidth() // entry_width)))
    rows = -(-len(handles) // ncol)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, fontsize="small")
    fig.tight_layout(rect=(0, min(0.5, (0.24 * rows + 0.1) / fig.get_figheight()), 1, 1))


def thousands(ax: plt.Axes, bins: int = 5) -> None:
    """At most ``bins`` x ticks, labelled 5k, 10k, ... (long step counts otherwise collide)."""
    ax.xaxis.set_major_locator(MaxNLocator(bins, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"))


def save_png(fig: plt.Figure, path: str | Path, dpi: int) -> None:
    """Write a PNG atomically, without the matplotlib version stamp, so reruns give identical bytes."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def read_tables(curves: str | Path, methods: str | Path, made_by: str) -> tuple[pd.DataFrame, dict]:
    """An evaluation's curves CSV and methods JSON, both written by the stage ``made_by`` (what the
    figure stages of the classification and meta-RL families draw)."""
    return pd.read_csv(require_file(curves, made_by)), json.loads(require_file(methods, made_by).read_text())
