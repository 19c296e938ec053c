"""The classification figure of the report: query accuracy vs SGD steps, one panel per setting."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from reml.core.figures import line_style, method_colors
from reml.core.plots import Column


def classification_curves(curves: pd.DataFrame, methods: Sequence[str], settings: Sequence[str]) -> plt.Figure:
    """Query accuracy vs SGD steps, one panel per N-way K-shot setting, one line per method with its 95%
    CI band over the test episodes; chance level dotted."""
    sns.set_theme(style="whitegrid", context="notebook")
    colors = method_colors(methods)
    fig, axes = plt.subplots(1, len(settings), figsize=(max(4.8 * len(settings), 9.0), 4.2), sharey=True, squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        for method in methods:
            mean, ci = 100 * curves[f"{method}_{setting}"], 100 * curves[f"{method}_{setting}_ci95"]
            ax.plot(curves["step"], mean, label=method, color=colors[method], linestyle=line_style(method),
                    marker="o", markersize=3, linewidth=1.4)  # fmt: skip
            ax.fill_between(curves["step"], (mean - ci).clip(0, 100), (mean + ci).clip(0, 100), color=colors[method],
                            alpha=0.15, linewidth=0)  # fmt: skip
        ways = int(setting.split("w")[0])
        ax.axhline(100 / ways, color="grey", linestyle=":", linewidth=1)
        ax.set(title=setting_title(setting), xlabel="SGD steps on the support images", ylim=(0, 100))
        ax.set_xticks(list(curves["step"]))
    axes[0][0].set_ylabel("query accuracy (%, mean ± 95% CI)")
    handles, _ = axes[0][0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="grey", linestyle=":", label="chance"))
    ncol = min(len(handles), 4 if len(settings) < 3 else 8)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False)
    fig.tight_layout(rect=(0, 0.07 * -(-len(handles) // ncol) + 0.01, 1, 1))
    return fig


def plot_columns(methods_info: dict) -> list[Column]:
    """The columns of ``dvc plots``' classification table (:mod:`reml.core.plots`): every method, every setting."""
    methods = list(methods_info["methods"])
    settings = list(methods_info["methods"][methods[0]])
    return [(setting_title(s), m, f"{m}_{s}", f"{m}_{s}_ci95") for s in settings for m in methods]


def setting_title(setting: str) -> str:
    return setting.replace("w", "-way ").replace("s", "-shot")


def accuracy_figure(curves: pd.DataFrame, methods_info: dict) -> plt.Figure:
    """The figure of ``evaluate_classification``'s curves and methods file: every method, every setting."""
    methods = list(methods_info["methods"])
    return classification_curves(curves, methods, list(methods_info["methods"][methods[0]]))
