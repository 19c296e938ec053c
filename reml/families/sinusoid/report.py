"""The sinusoid section of the report: tables (mean ± 95% CI, published numbers beside ours), sanity
checks, figures and research questions 1 and 3, written from the evaluation's tables only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from reml.core.compare import versus
from reml.families.sinusoid.config import SinusoidParams
from reml.families.sinusoid.tasks import UNRELATED_FAMILIES

# Finn, Abbeel & Levine (2017), appendix Table 2: sinusoid regression, 5-shot query MSE after
# 1 / 5 / 10 gradient steps (MAML meta-trained with K = 10). No confidence intervals were published.
FINN_SINUSOID_K5: dict[str, dict[int, float]] = {
    "pretrained": {1: 2.41, 5: 2.23, 10: 2.19},
    "maml": {1: 0.67, 5: 0.38, 10: 0.35},
}
# The test-time step size each published row used: Finn's pretrained baseline had an "automatically
# tuned" one; MAML used its inner step size α = 0.01.
FINN_STEP_SIZES = {"pretrained": "tuned", "maml": "0.01"}
FINN_CITATION = "Finn et al. 2017, Table 2"

TABLE_STEPS = (0, 1, 5, 10)  # Finn's Table 2 reports 1, 5 and 10 steps; 0 is the un-adapted network


@dataclass(frozen=True)
class SinusoidSetup:
    """What the reader needs to interpret the sinusoid tables."""

    n_test: int
    n_query: int
    shots: tuple[int, ...]
    steps: int
    optimizer: str


def _num(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.3g}"


def _cell(mean: float | None, ci: float | None) -> str:
    """mean ± CI; "diverged" where the mean is not finite (null in the metrics JSON)."""
    if mean is None or ci is None or not (math.isfinite(mean) and math.isfinite(ci)):
        return "diverged"
    return f"{_num(mean)} ± {_num(ci)}"


def _step_size(value: float | list[float]) -> str:
    """A step size, or one per seed joined by '/'."""
    return "/".join(f"{v:g}" for v in value) if isinstance(value, list) else f"{value:g}"


REML_SUPPORT = ("reml_ppo", "reml_maskable", "reml_lstm")  # the REML variants that see only the support points


def _clean(mean: float | None, ci: float | None) -> tuple[float, float]:
    """(mean, CI) for comparisons: a missing or NaN mean is a diverged run (+inf); a missing or NaN CI
    (a finite mean over tasks some of which blew up) is an infinitely wide interval."""
    mean = math.inf if mean is None or math.isnan(mean) else mean
    ci = math.inf if ci is None or math.isnan(ci) else ci
    return mean, ci


def _at(curves: pd.DataFrame, method: str, k: int, step: int) -> tuple[float, float]:
    row = curves[curves.step == step].iloc[0]
    return _clean(float(row[f"{method}_k{k}"]), float(row[f"{method}_k{k}_ci95"]))


def _versus(a: tuple[float, float], b: tuple[float, float], name: str) -> str:
    """``a`` against ``b`` in the reports' one vocabulary (:mod:`reml.core.compare`): lower or higher only
    when the 95% CIs do not overlap, not comparable when either side diverged."""
    return versus(a, b, name, _cell(*b))


def research_question_1(
    curves: pd.DataFrame, long_curves: pd.DataFrame, methods: Sequence[str], long_k: int, long_steps: int
) -> str:
    """RQ1, fast learning: each support-encoded REML agent vs scratch, pretrained and MAML at 0/1/10 steps."""
    reml = [m for m in REML_SUPPORT if m in methods]
    others = [m for m in ("scratch", "pretrained", "maml") if m in methods]
    if not reml or not others:
        return "(needs a REML agent and at least one of scratch, pretrained, maml)"
    lines = []
    for k in (5, 10):
        if f"scratch_k{k}" not in curves and f"{reml[0]}_k{k}" not in curves:
            continue
        for step in (0, 1, 10):
            if step > int(curves.step.max()):
                continue
            best = min(reml, key=lambda m: _at(curves, m, k, step)[0])
            b = _at(curves, best, k, step)
            parts = []
            for other in others:
                parts.append(_versus(b, _at(curves, other, k, step), other))
            lines.append(
                f"- K = {k}, {step} step{'s' if step != 1 else ''}: best REML agent {best} "
                f"{_cell(*b)}: " + "; ".join(parts) + "."
            )
    long_methods = [m for m in reml if f"{m}_k{long_k}" in long_curves]
    if long_methods and f"scratch_k{long_k}" in long_curves:
        s = _at(long_curves, "scratch", long_k, long_steps)
        for m in long_methods:
            r = _at(long_curves, m, long_k, long_steps)
            lines.append(
                f"- Longer fine-tune (K = {long_k}, {long_steps} steps, figure above): {m} {_cell(*r)}, "
                f"{_versus(r, s, 'scratch')}."
            )
    return "\n".join(lines)


def unrelated_table(unrelated: dict, k: int, steps: Sequence[int]) -> str:
    """Query MSE on the unrelated task families vs in-distribution, one row per method, per step."""
    families = list(unrelated)
    methods = list(dict.fromkeys(m for f in families for m in unrelated[f]))
    if not methods:
        return "(no method without access to the true task parameters was evaluated)"
    out = []
    for step in steps:
        out += [f"#### After {step} step{'s' if step != 1 else ''} (K = {k})", ""]
        out.append("| method | " + " | ".join(f.replace("_", " ") for f in families) + " |")
        out.append("|---|" + "---|" * len(families))
        for m in methods:
            cells = []
            for f in families:
                leaves = unrelated[f].get(m, {}).get(f"k{k}")
                cells.append(_cell(leaves[f"mse_step{step}"], leaves[f"ci95_step{step}"]) if leaves else "–")
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def research_question_3(unrelated: dict, k: int, step: int) -> str:
    """RQ3 in words: per family, the best method, where REML stands, its ratio to scratch, and divergences."""
    lines = []
    for family, by_method in unrelated.items():
        if not by_method:
            continue
        values = {
            m: _clean(v[f"k{k}"][f"mse_step{step}"], v[f"k{k}"][f"ci95_step{step}"]) for m, v in by_method.items()
        }
        ranked = sorted(values, key=lambda m: values[m][0])
        reml = [m for m in ranked if m in REML_SUPPORT]
        text = f"- {family.replace('_', ' ')}: best {ranked[0]} ({_cell(*values[ranked[0]])})"
        if reml:
            r = reml[0]
            text += f"; best REML agent {r} ranks {ranked.index(r) + 1} of {len(ranked)} ({_cell(*values[r])})"
            if "scratch" in values and 0 < values["scratch"][0] < math.inf:
                ratio = values[r][0] / values["scratch"][0]
                text += f", {ratio:.2f}× scratch's error, {_versus(values[r], values['scratch'], 'scratch')}"
        start = {m: v[f"k{k}"]["mse_step0"] for m, v in by_method.items()}
        diverged = [m for m in ranked if not values[m][0] < 2 * (start[m] if start[m] is not None else math.inf)]
        if diverged:
            text += (
                f"; fine-tuning diverged on some tasks (mean after {step} steps above twice the step-0 mean, "
                f"or not finite) for {', '.join(diverged)}"
            )
        lines.append(text + ".")
    return "\n".join(lines)


def sinusoid_tables(
    curves: pd.DataFrame, methods: Sequence[str], step_sizes: dict[str, dict[str, float]], setup: SinusoidSetup
) -> str:
    """One table per K: methods × steps, our mean ± 95% CI, with Finn et al.'s numbers beside ours."""
    steps = [s for s in TABLE_STEPS if s <= setup.steps]
    if setup.steps not in steps:
        steps.append(setup.steps)
    out = []
    for k in setup.shots:
        head = "| method | step size | " + " | ".join(f"{s} step{'s' if s != 1 else ''}" for s in steps) + " |"
        out += [f"#### K = {k}", "", head, "|---|---|" + "---|" * len(steps)]
        for m in methods:
            row = curves.set_index("step")
            cells = [_cell(row.at[s, f"{m}_k{k}"], row.at[s, f"{m}_k{k}_ci95"]) for s in steps]
            out.append(f"| {m} | {_step_size(step_sizes[m][f'k{k}'])} | " + " | ".join(cells) + " |")
            if k == 5 and m in FINN_SINUSOID_K5:
                published = FINN_SINUSOID_K5[m]
                cells = [f"{published[s]:.2f}" if s in published else "–" for s in steps]
                out.append(f"| *{m}, {FINN_CITATION}* | *{FINN_STEP_SIZES[m]}* | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def sanity_checks(curves: pd.DataFrame, shots: Sequence[int], steps: int) -> str:
    """The orderings any correct run must show (the baselines' ordering), stated per K with the numbers."""
    lines = []
    first, last = curves[curves.step == 0].iloc[0], curves[curves.step == steps].iloc[0]
    for k in shots:
        o, p, s = first[f"oracle_k{k}"], first[f"pretrained_k{k}"], first[f"scratch_k{k}"]
        ok = "yes" if o < p < s else "**NO**"
        lines.append(f"- K = {k}: step-0 MSE oracle {o:.3f} < pretrained {p:.3f} < scratch {s:.3f}: {ok}")
        improved = "yes" if last[f"scratch_k{k}"] < s else "**NO**"
        lines.append(
            f"- K = {k}: scratch improves from step 0 to step {steps} "
            f"({s:.3f} → {last[f'scratch_k{k}']:.3f}): {improved}"
        )
        if f"maml_k{k}" in curves:
            one = curves[curves.step == 1].iloc[0]
            m, p1 = one[f"maml_k{k}"], one[f"pretrained_k{k}"]
            lines.append(f"- K = {k}: after 1 step maml {m:.3f} < pretrained {p1:.3f}: {'yes' if m < p1 else '**NO**'}")
    return "\n".join(lines)


CURVES_CAPTION = "Query MSE vs gradient steps, mean and 95% CI over test tasks (Finn et al. Fig. 3 style)"
META_CAPTION = (
    "Meta-training curves: query MSE of the training tasks after the inner loop "
    "(window means; 1 inner step for maml and fomaml, 5 for reptile)"
)
REML_CAPTION = (
    "REML training: query MSE of the network built and trained in each episode, episode return, and the "
    "rate of invalid choices that had to be remapped (PPO and RecurrentPPO; MaskablePPO never makes one)"
)
LONG_SETUP = "{steps} {optimizer} steps (lr {lr}) on K = {k} support points of the test tasks, one step size for all"
LONG_CAPTION = "Loss per step over a longer fine-tune (the REML thesis's figure): " + LONG_SETUP + ", mean and 95% CI"
UNRELATED_CAPTION = (
    "Research question 3: query MSE after {steps} steps (K = {k}) on task families never seen in meta-training, "
    "mean and 95% CI (log scale)"
)


def _long_setup(params: SinusoidParams) -> dict[str, object]:
    long = params.evaluate_fewshot.long_finetune
    return {"k": long.k, "steps": long.steps, "optimizer": long.optimizer.upper(), "lr": f"{long.lr:g}"}


def figure_files(params: SinusoidParams) -> dict[str, str]:
    """The report's sinusoid figures: caption -> file name in the figures directory."""
    return {
        CURVES_CAPTION: "curves.png",
        **{
            f"Example fits on test tasks, K = {k} (Finn et al. Fig. 2 style)": f"examples_k{k}.png"
            for k in params.adaptation.shots
        },
        "Training MSE of the jointly trained baselines": "training.png",
        META_CAPTION: "meta_training.png",
        REML_CAPTION: "reml_training.png",
        LONG_CAPTION.format(**_long_setup(params)): "long_finetune.png",
        UNRELATED_CAPTION.format(k=params.evaluate_fewshot.unrelated_k, steps=params.adaptation.steps): "unrelated.png",
    }


def section(
    params: SinusoidParams,
    curves: pd.DataFrame,
    methods_info: dict,
    long_curves: pd.DataFrame,
    unrelated: dict,
    figures: dict[str, str],
) -> str:
    """The sinusoid section of the report as markdown, from the evaluation's tables. ``figures`` maps a
    caption to a path relative to the report."""
    cfg = params.evaluate_fewshot
    methods = list(cfg.methods)
    step_sizes = {m: methods_info[m]["step_sizes"] for m in methods}
    setup = SinusoidSetup(
        n_test=params.generate_tasks.n_test,
        n_query=params.generate_tasks.n_query,
        shots=params.adaptation.shots,
        steps=params.adaptation.steps,
        optimizer=params.adaptation.optimizer,
    )
    long_k, long_steps, long_setup = (
        cfg.long_finetune.k,
        cfg.long_finetune.steps,
        LONG_SETUP.format(**_long_setup(params)),
    )
    families = {name: f.description for name, f in UNRELATED_FAMILIES.items()}
    unrelated_k = cfg.unrelated_k
    baseline_set = {"scratch", "pretrained", "oracle"}
    checks = sanity_checks(curves, setup.shots, setup.steps) if baseline_set <= set(methods) else ""
    figure_md = "\n\n".join(f"![{caption}]({path})\n\n*{caption}*" for caption, path in figures.items())
    return f"""## Sinusoid regression (Finn et al. 2017, Sec. 5.1)

Every method is scored by the same harness on the same {setup.n_test} fixed test tasks: its initial
network is fine-tuned with {setup.optimizer.upper()} on the K support points for up to {setup.steps} full-batch
steps, and the MSE on {setup.n_query} held-out query points per task is recorded after every step. Cells
are mean ± 95% CI (1.96·std/√{setup.n_test}). Step sizes of `scratch`, `pretrained` and `oracle` were
tuned for each K on separate validation tasks (lowest mean query MSE over steps 1..{setup.steps}).
`oracle` sees the true amplitude and phase: its step-0 error is the floor.
Published numbers (italic) are Finn et al.'s, on their own 600 test tasks; they published no CIs.

### Query MSE

{sinusoid_tables(curves, methods, step_sizes, setup)}
### Sanity checks

{checks or "(needs scratch, pretrained and oracle)"}

### Figures

{figure_md}

## Research questions

REML rows: the policy composes one network per test task from the pool, reading only the K support
points (`reml_*`) or, labelled `_oracle`, the true amplitude and phase as in the thesis; the pool is
frozen and no query point is seen before scoring. The network is then fine-tuned by the same harness
as every other method, with a step size tuned on validation tasks. A difference is called "lower" or
"higher" only when the 95% CIs do not overlap ("level with" when they do), and "not comparable" when a
side diverged on some task.

### RQ1: does REML enable fast learning on new tasks?

{research_question_1(curves, long_curves, methods, long_k, long_steps)}

The thesis's own figure, {long_setup}, is `long_finetune.png` above.

### RQ3: is REML robust to unrelated tasks?

Every method that does not read the true task parameters, on {len(families)} task families never seen in
meta-training (same input range, same harness and step sizes as in-distribution):
{chr(10).join(f"- {name.replace('_', ' ')}: {text}" for name, text in families.items())}

{research_question_3(unrelated, unrelated_k, setup.steps)}

{unrelated_table(unrelated, unrelated_k, (0, setup.steps))}"""
