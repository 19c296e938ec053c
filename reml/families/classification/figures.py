"""The classification figure of the report: query accuracy vs SGD steps, one panel per setting."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from reml.core.figures import line_style, method_colors


def classification_curves(curves: pd.DataFrame, methods: Sequence[str], settings: Sequence[str]) -> plt.Figure:
    """Query accuracy vs SGD steps, one panel per N-way K-shot setting, one line per method."""
    colors = method_colors(methods)
    fig, axes = plt.subplots(1, len(settings), figsize=(4.5 * len(settings), 3.6), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        for method in methods:
            sns.lineplot(x=curves["step"], y=100 * curves[f"{method}_{setting}"], ax=ax, label=method,
                         color=colors[method], linestyle=line_style(method), marker="o", markersize=3)  # fmt: skip
        ax.set(title=setting.replace("w", "-way ").replace("s", "-shot"), xlabel="SGD steps on the support images",
               ylabel="query accuracy (%)")  # fmt: skip
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def accuracy_figure(curves: pd.DataFrame, methods_info: dict) -> plt.Figure:
    """The figure of ``evaluate_classification``'s curves and methods file: every method, every setting."""
    methods = list(methods_info["methods"])
    return classification_curves(curves, methods, list(methods_info["methods"][methods[0]]))
