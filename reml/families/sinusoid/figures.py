"""The sinusoid figures of the report: pure functions from the evaluation tables to matplotlib figures."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reml.core.figures import (
    DIVERGED_MARKER,
    bottom_legend,
    diverged_handle,
    line_style,
    log_limits,
    method_colors,
    positive_curve,
    thousands,
)
from reml.core.plots import Column
from reml.families.sinusoid.config import REML_METHODS, SinusoidParams, reml_method


def learning_curves(
    curves: pd.DataFrame,
    methods: Sequence[str],
    shots: Sequence[int],
    xlabel: str = "gradient steps",
    rows: Sequence[tuple[str, Sequence[str]]] | None = None,
) -> plt.Figure:
    """Query MSE vs gradient steps on a log scale, one panel per K, one line per method with its 95% CI
    band (Finn Fig. 3); diverged points are marked at the top of the axis, never dropped. ``rows``
    (title, methods) splits the methods over rows of panels, each with its own legend, so that no panel
    holds more lines than a reader can follow."""
    sns.set_theme(style="whitegrid", context="notebook")
    rows = list(rows) if rows else [("", list(methods))]
    colors = method_colors([m for _, group in rows for m in group])
    means = [curves[f"{m}_k{k}"] for _, group in rows for m in group for k in shots]
    limits = log_limits([float(c.iloc[0]) for c in means], [float(v) for c in means for v in c])
    fig, axes = plt.subplots(len(rows), len(shots), figsize=(4.2 * len(shots) + 2.6, 3.4 * len(rows)),
                             sharey=True, squeeze=False)  # fmt: skip
    for r, (title, group) in enumerate(rows):
        diverged = 0
        for ax, k in zip(axes[r], shots, strict=True):
            for method in group:
                diverged += positive_curve(
                    ax, curves["step"], curves[f"{method}_k{k}"], curves[f"{method}_k{k}_ci95"], limits,
                    label=method, color=colors[method], linestyle=line_style(method),
                    marker="o" if len(curves) <= 25 else None, markersize=3, linewidth=1.4,
                )  # fmt: skip
            ax.set_title(f"{title}, K = {k}" if title else f"K = {k}", fontsize=10)
            ax.set_xlabel(xlabel if r == len(rows) - 1 else "")
        axes[r][0].set_ylabel("query MSE (mean ± 95% CI, log)", fontsize=9)
        handles, _ = axes[r][0].get_legend_handles_labels()
        if diverged:
            handles.append(diverged_handle())
        axes[r][-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


STEP_STYLES = (":", "--", "-")  # the example steps, earliest to latest (the last is always solid)


def method_groups(methods: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The example figure's columns: baselines, meta-learners, REML, REML with the oracle encoding."""
    groups = {
        "baselines": [
            m for m in methods if m in ("scratch", "scratch_deep", "pretrained", "pretrained_matched", "oracle")
        ],  # fmt: skip
        "meta-learners": [m for m in methods if m in ("maml", "maml_matched", "fomaml", "reptile")],
        "REML": [m for m in methods if m.startswith("reml_") and not m.endswith("_oracle")],
        "REML, oracle encoding": [m for m in methods if m.startswith("reml_") and m.endswith("_oracle")],
    }
    return [(name, group) for name, group in groups.items() if group]


def example_fits(examples: pd.DataFrame, k: int, steps: Sequence[int], methods: Sequence[str]) -> plt.Figure:
    """Fits on a few test tasks (rows), methods grouped in columns so that each panel stays readable, after
    each of ``steps`` (dotted, dashed, solid: earliest to latest), support points marked (Finn Fig. 2)."""
    sns.set_theme(style="whitegrid", context="notebook")
    colors = method_colors(methods)
    tasks = sorted(examples.loc[examples.kind == "truth", "task"].unique())
    groups = method_groups(methods)
    styles = dict(zip(steps, STEP_STYLES[-len(steps):] if len(steps) <= 3 else [*[":"] * (len(steps) - 2), "--", "-"],
                      strict=True))  # fmt: skip
    fig, axes = plt.subplots(len(tasks), len(groups), figsize=(3.6 * len(groups), 2.5 * len(tasks)), sharex=True,
                             sharey="row", squeeze=False)  # fmt: skip
    for row, task in enumerate(tasks):
        of_task = examples[examples.task == task]
        truth = of_task[of_task.kind == "truth"]
        support = of_task[(of_task.kind == "support") & (of_task.k == k)]
        for col, (name, group) in enumerate(groups):
            ax = axes[row][col]
            ax.plot(truth.x, truth.y, color="black", linewidth=1.6)
            for method in group:
                for step in steps:
                    pred = of_task[(of_task.kind == "prediction") & (of_task.k == k) & (of_task.method == method)
                                   & (of_task.step == step)]  # fmt: skip
                    ax.plot(pred.x, pred.y, color=colors[method], linewidth=1.3, linestyle=styles[step],
                            alpha=1.0 if step == steps[-1] else 0.7)  # fmt: skip
            ax.scatter(support.x, support.y, color="black", marker="^", s=28, zorder=5)
            if row == 0:
                ax.set_title(name)
            if col == 0:
                ax.set_ylabel(f"test task {task}")
    handles = [Line2D([], [], color="black", linewidth=1.6, label="ground truth"),
               Line2D([], [], color="black", marker="^", linestyle="", label=f"{k} support points")]  # fmt: skip
    handles += [Line2D([], [], color="grey", linestyle=styles[s], label=f"after {s} step{'s' if s != 1 else ''}")
                for s in steps]  # fmt: skip
    handles += [Line2D([], [], color=colors[m], linewidth=2.5, label=m) for _, group in groups for m in group]
    bottom_legend(fig, handles)
    return fig


def training_curves(logs: dict[str, pd.DataFrame], column: str, ylabel: str) -> plt.Figure:
    """A loss vs iteration for the methods that train (``iteration, <column>`` tables), log scale."""
    sns.set_theme(style="whitegrid", context="notebook")
    colors = method_colors(list(logs))
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for method, log in logs.items():
        sns.lineplot(x=log["iteration"], y=log[column], ax=ax, label=method, color=colors[method])
    ax.set_yscale("log")
    ax.set_xlabel("training iteration")
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def reml_training(logs: dict[str, pd.DataFrame]) -> plt.Figure:
    """REML training: built-network query MSE, episode return and invalid-action rate vs timesteps.

    ``logs`` maps a run name ``<agent>-<encoding>-<variant>-<seed>`` to its training-curve table."""
    sns.set_theme(style="whitegrid", context="notebook")
    runs = pd.concat([log.assign(run=name) for name, log in logs.items()], ignore_index=True)
    parts = runs["run"].str.rsplit("-", n=3, expand=True)
    runs["method"] = [reml_method(a, e, v) for a, e, v in zip(parts[0], parts[1], parts[2], strict=True)]
    runs["seed"] = parts[3]
    colors = method_colors(sorted(runs["method"].unique()))
    panels = (
        ("built_loss", "built network's query MSE", True),
        ("episode_reward", "episode return", False),
        ("invalid_rate", "invalid-action rate (remapped)", False),
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (column, label, log_y) in zip(axes, panels, strict=True):
        dashes = {m: (4, 2) if line_style(m) == "--" else "" for m in colors}
        sns.lineplot(
            data=runs, x="timesteps", y=column, hue="method", units="seed", estimator=None, ax=ax,
            palette=colors, style="method", dashes=dashes,
        )  # fmt: skip
        ax.set_ylabel(label)
        ax.set_xlabel("environment timesteps")
        thousands(ax)
        if log_y:
            ax.set_yscale("log")
        ax.legend().remove()
    handles, _ = axes[0].get_legend_handles_labels()
    bottom_legend(fig, handles, entry_width=3.6)  # six columns cut the variants' long names at both edges
    return fig


def unrelated_tasks(unrelated: dict, k: int, step: int) -> plt.Figure:
    """Query MSE after ``step`` steps on each task family (in-distribution first), per method, with 95% CIs,
    log scale. A diverged cell is a hatched bar to the top of the axis with a triangle: no finite mean, or
    a mean above 10 x the worst finite mean before adaptation (as :func:`log_limits` rules), which would
    otherwise stretch the axis until every other bar is unreadable. Shown as diverged, never dropped."""
    sns.set_theme(style="whitegrid", context="notebook")
    rows = [
        {"family": family, "method": method, "mse": leaves[f"k{k}"][f"mse_step{step}"],
         "ci": leaves[f"k{k}"][f"ci95_step{step}"], "start": leaves[f"k{k}"]["mse_step0"]}
        for family, by_method in unrelated.items()
        for method, leaves in by_method.items()
    ]  # fmt: skip
    table = pd.DataFrame(rows).astype({"mse": float, "ci": float, "start": float})  # null -> NaN
    families, methods = list(unrelated), list(dict.fromkeys(table["method"]))
    colors = method_colors(methods)
    starts = table.start[np.isfinite(table.start) & (table.start > 0)]
    bound = 10 * float(starts.max()) if len(starts) else np.inf
    table["shown"] = np.isfinite(table.mse) & (table.mse > 0) & (table.mse <= bound)
    finite = table[table.shown]
    top = 3 * float((finite.mse + finite.ci.fillna(0)).max()) if len(finite) else 1.0
    bottom = float(finite.mse.min()) / 2 if len(finite) else top / 1e3
    fig, ax = plt.subplots(figsize=(max(8.0, 1.8 * len(families)), 4.6))
    width = 0.8 / len(methods)
    any_diverged = False
    for i, method in enumerate(methods):
        of = table[table.method == method].set_index("family").reindex(families)
        x = np.arange(len(families)) + (i - (len(methods) - 1) / 2) * width
        ok = of["shown"].fillna(False).to_numpy(dtype=bool)
        mse, ci = of["mse"].to_numpy(), of["ci"].fillna(0).to_numpy()
        lower = np.where(ok, np.minimum(ci, mse - bottom), 0)  # the bar's error bar stops at the axis
        upper = np.where(ok, np.minimum(ci, top - mse), 0)
        ax.bar(x[ok], mse[ok], width, yerr=[lower[ok], upper[ok]], color=colors[method], capsize=2)
        if (~ok).any():
            any_diverged = True
            ax.bar(x[~ok], top, width, color="white", edgecolor=colors[method], hatch="//", linewidth=1)
            ax.scatter(x[~ok], np.full(int((~ok).sum()), top), color=colors[method], clip_on=False, **DIVERGED_MARKER)
    ax.set_xticks(range(len(families)), [f.replace("_", "\n") for f in families])
    ax.set_yscale("log")
    ax.set_ylim(bottom, top)
    ax.set_ylabel(f"query MSE after {step} steps (log)")  # K: in the caption
    # one patch per method, also for a method with no bar of its own colour (every cell diverged)
    handles: list = [Patch(facecolor=colors[m], label=m) for m in methods]
    if any_diverged:
        handles.append(diverged_handle("diverged: inf, NaN or 10x no adaptation (hatched)"))
    bottom_legend(fig, handles)
    return fig


def plot_columns(methods: Sequence[str], shots: Sequence[int]) -> list[Column]:
    """The columns of ``dvc plots``' sinusoid tables (:mod:`reml.core.plots`): every method, every K."""
    return [(f"K = {k}", m, f"{m}_k{k}", f"{m}_k{k}_ci95") for k in shots for m in methods]


def report_figures(
    params: SinusoidParams,
    curves: pd.DataFrame,
    examples: pd.DataFrame,
    training_logs: dict[str, pd.DataFrame],
    meta_training_logs: dict[str, pd.DataFrame],
    long_curves: pd.DataFrame,
    unrelated: dict,
    reml_logs: dict[str, pd.DataFrame],
    mixed: dict,
) -> dict[str, plt.Figure]:
    """Every sinusoid figure of the report, by file name, from the evaluation tables and training logs."""
    shots, methods = params.adaptation.shots, list(params.evaluate_fewshot.methods)
    long = params.evaluate_fewshot.long_finetune
    extra = {
        "long_finetune.png": learning_curves(
            long_curves, list(long.methods), [long.k], xlabel=f"{long.optimizer} steps (lr {long.lr:g})"
        ),
        "reml_training.png": reml_training(reml_logs),
        "unrelated.png": unrelated_tasks(unrelated, params.evaluate_fewshot.unrelated_k, params.adaptation.steps),
        "mixed.png": unrelated_tasks(mixed, params.train_mixed.k, params.adaptation.steps),
    }
    reml_rows = [m for m in methods if m in REML_METHODS or m.startswith("reml_")]
    others = [m for m in methods if m not in reml_rows]
    reference = [m for m in ("scratch", "maml_matched") if m in methods]
    rows = [("baselines and meta-learners", others), ("REML", [*reference, *reml_rows])] if reml_rows else None
    main = {"curves.png": learning_curves(curves, methods, shots, rows=rows)}
    for k in shots:
        main[f"examples_k{k}.png"] = example_fits(examples, k, params.make_figures.example_steps, methods)
    main["training.png"] = training_curves(training_logs, "train_mse", "training MSE (window mean)")
    main["meta_training.png"] = training_curves(meta_training_logs, "meta_loss", "meta-loss (query MSE after adapting)")
    return main | extra
