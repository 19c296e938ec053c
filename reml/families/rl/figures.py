"""The meta-RL figure of the report: average return vs policy-gradient steps, one panel per family."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from reml.core.figures import bottom_legend, line_style, method_colors
from reml.core.plots import Column
from reml.families.rl.report import FINN_RL


def rl_curves(curves: pd.DataFrame, families: Sequence[str], methods: Sequence[str],
              published: dict[str, Sequence[float]], xlabel: str = "policy-gradient steps") -> plt.Figure:  # fmt: skip
    """Average return vs policy-gradient steps on the test tasks, one panel per family, one line per
    method with its 95% CI band; Finn et al.'s MAML returns as black crosses where published."""
    sns.set_theme(style="whitegrid", context="notebook")
    colors = method_colors(methods)
    fig, axes = plt.subplots(1, len(families), figsize=(4.8 * len(families), 5.0), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        for method in methods:
            mean, ci = curves[f"{family}.{method}"], curves[f"{family}.{method}.ci95"]
            ax.plot(curves["step"], mean, label=method, color=colors[method], linestyle=line_style(method),
                    marker="o", markersize=3, linewidth=1.4)  # fmt: skip
            ax.fill_between(curves["step"], mean - ci, mean + ci, color=colors[method], alpha=0.15, linewidth=0)
        if family in published:
            finn_points(ax, published[family])
        ax.set(xlabel=xlabel, ylabel="average return (mean ± 95% CI)")
        ax.set_title(family, pad=14)
        ax.set_xticks(list(curves["step"]))
    labelled = {}
    for ax in axes[0]:  # Finn's crosses appear only in the panels with published numbers
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labelled.setdefault(label, handle)
    bottom_legend(fig, list(labelled.values()))
    return fig


def finn_points(ax: plt.Axes, values: Sequence[float]) -> None:
    """Finn et al.'s MAML returns as black crosses. One outside the range of our curves (another control
    interval, docs/rl.md) is drawn as an arrow at the panel's edge with its value, so it does not squash
    our curves."""
    low, high = ax.get_ylim()
    for step, value in enumerate(values):
        if low <= value <= high:
            ax.scatter([step], [value], marker="x", color="black", zorder=5, label="maml, Finn et al.")
        else:
            edge, marker, va = (high, "^", "top") if value > high else (low, "v", "bottom")
            ax.scatter([step], [edge], marker=marker, color="black", zorder=5, clip_on=False,
                       label="maml, Finn et al. (off scale: value shown)")  # fmt: skip
            ax.annotate(f"{value:g}", (step, edge), textcoords="offset points", xytext=(6, -2 if va == "top" else 2),
                        va=va, fontsize="small")  # fmt: skip
    ax.set_ylim(low, high)


def plot_columns(methods_info: dict) -> list[Column]:
    """The columns of ``dvc plots``' meta-RL table (:mod:`reml.core.plots`): every family, every method."""
    families = methods_info["families"]
    return [(f, m, f"{f}.{m}", f"{f}.{m}.ci95") for f in families for m in families[f]["methods"]]


def returns_figure(curves: pd.DataFrame, methods_info: dict) -> plt.Figure:
    """The figure of ``evaluate_rl``'s curves and methods file: every family, every method."""
    families = list(methods_info["families"])
    methods = list(methods_info["families"][families[0]]["methods"])
    xlabel = "policy-gradient steps"
    if methods_info.get("reml_alignment") == "episodes":  # REML's columns: its probe batch, then its steps
        xlabel = "batches of the task's episodes seen\n(= steps; REML: its probe, then steps)"
    return rl_curves(curves, families, methods, FINN_RL, xlabel)
