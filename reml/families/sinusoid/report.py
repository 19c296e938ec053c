"""The sinusoid section of the report: tables (mean ± 95% CI, published numbers beside ours), sanity
checks, figures and research questions 1 and 3, written from the evaluation's tables only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from reml.core.compare import blowup_limit, versus
from reml.core.report import SHARED, StatusRow
from reml.families.sinusoid.config import (
    REML_ABLATIONS,
    REML_METHODS,
    SinusoidParams,
    reml_method,
    split_reml_method,
)
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
FINN_TASKS = {"pretrained": "–", "maml": "1,750,000"}  # MAML: 70,000 meta-iterations x 25 tasks

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


def score_cell(leaves: dict, step: int, n_tasks: int) -> str:
    """A table cell from a method's leaves: mean ± 95% CI over tasks, then the spread (sd) of the
    replicates' means where there are several; where fine-tuning diverged on some tasks, their count and
    the median instead of a mean that means nothing."""
    diverged = leaves.get(f"diverged_step{step}", 0)
    if diverged:
        median = leaves.get(f"median_step{step}")
        shown = _num(median) if median is not None else "diverged"
        return f"diverged on {diverged}/{n_tasks}, median {shown}"
    if leaves.get(f"blown_step{step}"):
        return f"blew up (mean {_num(leaves[f'mse_step{step}'])}), median {_num(leaves[f'median_step{step}'])}"
    text = _cell(leaves[f"mse_step{step}"], leaves[f"ci95_step{step}"])
    sd = leaves.get(f"sd_seeds_step{step}")
    return f"{text} (sd {_num(sd)})" if sd is not None and text != "diverged" else text


def mark_blowups(by_method: dict) -> dict:
    """A copy of one setting's scores (method -> ``k<K>`` -> leaves) in which each finite mean above the
    blow-up limit of its K (:func:`reml.core.compare.blowup_limit`: 10 x the worst mean before adaptation,
    the figures' rule) carries ``blown_step<S>``: shown with its median, never compared."""
    shots = {k for settings in by_method.values() for k in settings}
    limit = {k: blowup_limit([s[k].get("mse_step0") for s in by_method.values() if k in s]) for k in shots}
    marked = {}
    for method, settings in by_method.items():
        marked[method] = {}
        for k, leaves in settings.items():
            blown = {f"blown_step{key.removeprefix('mse_step')}": True for key, v in leaves.items()
                     if key.startswith("mse_step") and v is not None and math.isfinite(v) and v > limit[k]
                     and not leaves.get(f"diverged_step{key.removeprefix('mse_step')}", 0)}  # fmt: skip
            marked[method][k] = {**leaves, **blown}
    return marked


def mark_paired(paired: dict, scores: dict) -> dict:
    """A copy of paired differences (``reference`` and other -> ``k<K>`` -> leaves) in which a step where
    either side blew up (:func:`mark_blowups` on ``scores``) carries ``blown_step<S>``."""
    reference = paired.get("reference")
    out: dict = {"reference": reference} if reference else {}
    for other, settings in paired.items():
        if other == "reference":
            continue
        out[other] = {}
        for k, leaves in settings.items():
            sides = [scores.get(m, {}).get(k, {}) for m in (reference, other)]
            blown = {key: True for side in sides for key in side if key.startswith("blown_step")}
            out[other][k] = {**leaves, **blown}
    return out


def paired_cell(leaves: dict, step: int) -> str:
    """:func:`paired_word` for the step of a paired table's leaves."""
    return paired_word(leaves.get(f"diff_step{step}"), leaves.get(f"ci95_step{step}"),
                       bool(leaves.get(f"blown_step{step}")))  # fmt: skip


def _step_size(value: float | list[float]) -> str:
    """A step size, or one per replicate joined by '/' (shown once when they agree)."""
    if isinstance(value, list):
        return f"{value[0]:g}" if len(set(value)) == 1 else "/".join(f"{v:g}" for v in value)
    return f"{value:g}"


def _clean(mean: float | None, ci: float | None) -> tuple[float, float]:
    """(mean, CI) for comparisons: a missing or NaN mean is a diverged run (+inf); a missing or NaN CI
    (a finite mean over tasks some of which blew up) is an infinitely wide interval."""
    mean = math.inf if mean is None or math.isnan(mean) else mean
    ci = math.inf if ci is None or math.isnan(ci) else ci
    return mean, ci


def _at(scores: dict, method: str, k: int, step: int) -> tuple[float, float]:
    leaves = scores[method][f"k{k}"]
    if leaves.get(f"diverged_step{step}", 0) or leaves.get(f"blown_step{step}"):
        return math.inf, math.inf
    return _clean(leaves[f"mse_step{step}"], leaves[f"ci95_step{step}"])


def _versus(a: tuple[float, float], b: tuple[float, float], name: str) -> str:
    """``a`` against ``b`` in the reports' one vocabulary (:mod:`reml.core.compare`): lower or higher only
    when the 95% CIs do not overlap, not comparable when either side diverged."""
    return versus(a, b, name, _cell(*b))


def budget(params: SinusoidParams, method: str) -> str:
    """What one run of ``method`` trained on: tasks, and for REML its environment steps."""
    tasks = params.training_tasks(method)
    if method in REML_METHODS or method in REML_ABLATIONS:
        return f"{tasks:,} ({params.train_reml.timesteps:,} env steps)"
    return f"{tasks:,}"


def _steps_word(step: int) -> str:
    return f"{step} step{'s' if step != 1 else ''}"


def paired_word(diff: float | None, ci: float | None, blown: bool = False) -> str:
    """A paired MSE difference (REML minus other) in words: lower or higher when its CI excludes 0; not
    comparable where either side diverged or (``blown``) blew up."""
    if diff is None or ci is None or not (math.isfinite(diff) and math.isfinite(ci)):
        return "not comparable (diverged on some task)"
    if blown:
        return "not comparable (blew up on some task)"
    verdict = "lower" if diff + ci < 0 else "higher" if diff - ci > 0 else "level"
    if max(abs(diff), ci) >= 1e5:  # a fine-tune that blew up while staying finite: 27 digits say nothing more
        return f"{diff:+.3g} ± {ci:.3g} ({verdict})"
    return f"{diff:+.3f} ± {ci:.3f} ({verdict})"


def paired_table(paired: dict, params: SinusoidParams, steps: Sequence[int]) -> str:
    """The reference REML row minus each other method, task by task, per K and step."""
    reference = paired.get("reference")
    others = [m for m in paired if m != "reference"]
    if not reference or not others:
        return "(needs the reference REML row and another method)"
    head = "| REML minus | training tasks | K | " + " | ".join(_steps_word(s) for s in steps) + " |"
    out = [head, "|---|---|---|" + "---|" * len(steps)]
    for other in others:
        for k in params.adaptation.shots:
            leaves = paired[other][f"k{k}"]
            cells = [paired_cell(leaves, s) for s in steps]
            out.append(f"| {other} | {budget(params, other)} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _tally(paired: dict, other: str, steps: Sequence[int]) -> str:
    """How the reference row stands against ``other`` over every K and step of the paired table."""
    counts = {"lower": 0, "level": 0, "higher": 0, "not comparable": 0}
    for leaves in paired[other].values():
        for step in steps:
            word = paired_cell(leaves, step)
            counts[next((w for w in ("lower", "level", "higher") if f"({w})" in word), "not comparable")] += 1
    total = sum(counts.values())
    shown = ", ".join(f"{w} in {n}" for w, n in counts.items() if n)
    return f"against {other}: {shown} of {total} cells"


def research_question_1(scores: dict, paired: dict, params: SinusoidParams, long_curves: pd.DataFrame) -> str:
    """RQ1 in words, from the paired numbers: the reference REML row against random and fixed composition
    (does the agent matter?), against MAML and pretrained at REML's budget, and at theirs, each a tally of
    lower / level / higher over every K and step of the paired table."""
    reference = paired.get("reference")
    if not reference:
        return "(needs the reference REML row, evaluate_fewshot.reml_reference, among the methods)"
    steps = [s for s in (0, 1, params.adaptation.steps) if s <= params.adaptation.steps]
    lines = []
    for question, others in (
        ("Does the agent beat composing from its own pool at random, or one fixed network?",
         ("reml_random", "reml_fixed")),
        ("How does REML stand against MAML and pretrained at REML's budget?", ("maml_matched", "pretrained_matched")),
        ("And against the baselines at their own budgets?", ("maml", "pretrained", "scratch", "scratch_deep")),
        ("Do the other REML rows (variants, agents, encodings) do better? (higher: that row's MSE is lower)",
         tuple(m for m in paired if m in REML_METHODS)),
    ):  # fmt: skip
        present = [o for o in others if o in paired]
        if present:
            tallies = "; ".join(_tally(paired, o, steps) for o in present)
            lines.append(f"- {question} {reference}'s query MSE, over K × steps: {tallies}.")
    long = params.evaluate_fewshot.long_finetune
    if f"{reference}_k{long.k}" in long_curves:
        row = long_curves[long_curves.step == long.steps].iloc[0]

        def at(m: str) -> tuple[float, float]:
            return _clean(float(row[f"{m}_k{long.k}"]), float(row[f"{m}_k{long.k}_ci95"]))

        others = [m for m in long.methods if m != reference]
        lines.append(f"- Longer fine-tune (K = {long.k}, {long.steps} steps, figure above): {reference} "
                     f"{_cell(*at(reference))}: " + "; ".join(_versus(at(reference), at(o), o) for o in others)
                     + ".")  # fmt: skip
    return "\n".join(lines)


def validation_objective(run_info: dict, k: int) -> float | None:
    """One run's validation objective at ``k`` shots: the mean query MSE over steps 1..S on the validation
    tasks at the step size chosen there (``step_size_tuning``, reml/core/harness.py); None if it diverged."""
    tuning = run_info["step_size_tuning"][f"k{k}"]
    value = next(v for lr, v in tuning["val_mse_by_lr"].items() if float(lr) == tuning["chosen"])
    return value if value is not None and math.isfinite(value) else None


def variant_choice(methods_info: dict, methods: Sequence[str], reference: str, shots: Sequence[int]) -> str:
    """The reference REML row and its variants (same agent and encoding) on the validation tasks, and the
    one with the lowest validation objective averaged over K: chosen without a test score."""
    agent, encoding, _ = split_reml_method(reference)
    rows = [m for m in methods if m in REML_METHODS and split_reml_method(m)[:2] == (agent, encoding)]
    if len(rows) < 2:
        return f"(needs a variant of {reference} among evaluate_fewshot.methods)"
    head = "| variant | runs | " + " | ".join(f"K = {k}" for k in shots) + " | mean over K |"
    out = [head, "|---|---|" + "---|" * (len(shots) + 1)]
    means: dict[str, float | None] = {}
    for method in rows:
        runs = methods_info[method]["runs"]
        cells, per_k = [], []
        for k in shots:
            values = [validation_objective(r, k) for r in runs]
            if any(v is None for v in values):
                cells.append(f"diverged in {sum(v is None for v in values)} run(s)")
                per_k.append(None)
                continue
            sd = float(pd.Series(values).std()) if len(values) > 1 else None
            cells.append(f"{_num(sum(values) / len(values))}" + (f" [{_num(sd)}]" if sd is not None else ""))
            per_k.append(sum(values) / len(values))
        means[method] = None if None in per_k else sum(per_k) / len(per_k)  # type: ignore[operator]
        variant = split_reml_method(method)[2]
        label = f"{variant} (default)" if variant == "thesis" else variant
        mean = "diverged" if means[method] is None else _num(means[method])  # type: ignore[arg-type]
        out.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + f" | {mean} |")
    finite = {m: v for m, v in means.items() if v is not None}
    if not finite:
        return "\n".join([*out, "", "No variant has a finite validation objective: none is chosen."])
    best = min(finite, key=lambda m: (finite[m], rows.index(m)))
    variant = split_reml_method(best)[2]
    elsewhere = (
        "Classification and meta-RL REML already train each built network with their harness's own rule (SGD on "
        "the support images; one REINFORCE step at the test-time step size), the change `sgd_inner` makes here, "
        "and run no separate variant."
        if variant == "sgd_inner"
        else "Classification and meta-RL REML run the thesis's rule too, with their harness's inner optimiser."
        if variant == "thesis"
        else f"`{variant}` is not implemented in classification and meta-RL: their REML rows keep the thesis's "
        "composition rule, with their harness's inner optimiser."
    )
    return "\n".join([*out, "", f"Chosen on validation tasks: **{variant}** (`{best}`; its test rows are in the tables "
                       f"and the paired table above). {elsewhere}"])  # fmt: skip


def unrelated_table(
    unrelated: dict, params: SinusoidParams, k: int, steps: Sequence[int], in_distribution: str = "in_distribution"
) -> str:
    """Query MSE on the unrelated task families vs in-distribution (the family named ``in_distribution``,
    scored on the sinusoid test tasks), one row per method, per step."""
    families = list(unrelated)
    methods = list(dict.fromkeys(m for f in families for m in unrelated[f]))
    if not methods:
        return "(no method without access to the true task parameters was evaluated)"
    n = {in_distribution: params.generate_tasks.n_test}
    out = []
    for step in steps:
        out += [f"#### After {_steps_word(step)} (K = {k})", ""]
        out.append("| method | training tasks | " + " | ".join(f.replace("_", " ") for f in families) + " |")
        out.append("|---|---|" + "---|" * len(families))
        for m in methods:
            cells = []
            for f in families:
                leaves = unrelated[f].get(m, {}).get(f"k{k}")
                size = n.get(f, params.generate_tasks.n_unrelated)
                cells.append(score_cell(leaves, step, size) if leaves else "–")
            out.append(f"| {m} | {budget(params, m)} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def research_question_3(unrelated: dict, reference: str, k: int, step: int) -> str:
    """RQ3 in words: per family, the best method, where the reference REML row stands (ranked among the
    methods with a finite mean), its ratio to scratch, and which methods diverged on some task."""
    lines = []
    for family, by_method in unrelated.items():
        if not by_method:
            continue
        values = {m: _at(by_method, m, k, step) for m in by_method}
        finite = sorted((m for m in values if all(map(math.isfinite, values[m]))), key=lambda m: values[m][0])
        diverged = [m for m in by_method if m not in finite]  # or blew up
        text = f"- {family.replace('_', ' ')}: best {finite[0]} ({_cell(*values[finite[0]])})" if finite else (
            f"- {family.replace('_', ' ')}: every method diverged on some task")  # fmt: skip
        if reference in finite:
            r = values[reference]
            text += f"; {reference} ranks {finite.index(reference) + 1} of {len(finite)} ({_cell(*r)})"
            if "scratch" in finite and values["scratch"][0] > 0:
                text += (f", {r[0] / values['scratch'][0]:.2f}× scratch's error, "
                         f"{_versus(r, values['scratch'], 'scratch')}")  # fmt: skip
        if diverged:
            text += "; not ranked, fine-tuning diverged on some tasks: " + ", ".join(
                _diverged(by_method[m][f"k{k}"], m, step) for m in diverged)  # fmt: skip
        lines.append(text + ".")
    return "\n".join(lines)


def mixed_paired_table(paired: dict, params: SinusoidParams, steps: Sequence[int]) -> str:
    """Per family of the mixture: the reference REML row minus each other method, task by task."""
    k = params.train_mixed.k
    out = ["| family | REML minus | training tasks | " + " | ".join(_steps_word(s) for s in steps) + " |",
           "|---|---|---|" + "---|" * len(steps)]  # fmt: skip
    for family, by_other in paired.items():
        for other in (m for m in by_other if m != "reference"):
            leaves = by_other[other][f"k{k}"]
            cells = [paired_cell(leaves, s) for s in steps]
            out.append(
                f"| {family.replace('_', ' ')} | {other} | {budget(params, other)} | " + " | ".join(cells) + " |"
            )
    return "\n".join(out)


def research_question_4(paired: dict, params: SinusoidParams, step: int) -> str:
    """RQ4 in words, from the paired differences after ``step`` steps: per family, where the reference stands
    against MAML at both budgets and against its own ablations."""
    k, reference = params.train_mixed.k, params.train_mixed.reference
    lines = []
    for family, by_other in paired.items():
        parts = []
        for other in ("maml", "maml_matched", "pretrained", "reml_random", "reml_fixed"):
            if other in by_other:
                leaves = by_other[other][f"k{k}"]
                parts.append(f"against {other} {paired_cell(leaves, step)}")
        lines.append(f"- {family.replace('_', ' ')}: {reference} " + "; ".join(parts) + ".")
    wins = {other: sum("(lower)" in paired_cell(by_other[other][f"k{k}"], step)
                       for by_other in paired.values() if other in by_other)
            for other in ("maml", "maml_matched", "reml_random")}  # fmt: skip
    n = len(paired)
    lines.append(
        f"\nAfter {_steps_word(step)}, {reference} has the lower MSE (CI of the paired difference excluding 0) on "
        f"{wins['maml']} of {n} families against maml, {wins['maml_matched']} of {n} against maml_matched (the same "
        f"number of training tasks) and {wins['reml_random']} of {n} against random compositions of its own pool."
    )
    return "\n".join(lines)


def _diverged(leaves: dict, method: str, step: int) -> str:
    count, median = leaves.get(f"diverged_step{step}", 0), leaves.get(f"median_step{step}")
    if not count and leaves.get(f"blown_step{step}"):
        return f"{method} (blew up, median {_num(median)})"
    if not count:
        return f"{method} (no finite mean or CI)"
    return f"{method} ({count} tasks, median {_num(median) if median is not None else 'diverged'})"


def sinusoid_tables(scores: dict, methods: Sequence[str], step_sizes: dict, params: SinusoidParams) -> str:
    """One table per K: methods × steps, mean ± 95% CI over tasks (sd over replicates), each method's
    replicates and training tasks beside it, Finn et al.'s numbers under ours."""
    n_steps = params.adaptation.steps
    steps = [s for s in TABLE_STEPS if s <= n_steps]
    if n_steps not in steps:
        steps.append(n_steps)
    n_test = params.generate_tasks.n_test
    out = []
    for k in params.adaptation.shots:
        head = "| method | runs | training tasks | step size | " + " | ".join(_steps_word(s) for s in steps) + " |"
        out += [f"#### K = {k}", "", head, "|---|---|---|---|" + "---|" * len(steps)]
        for m in methods:
            leaves = scores[m][f"k{k}"]
            cells = [score_cell(leaves, s, n_test) for s in steps]
            out.append(f"| {m} | {leaves.get('n_runs', 1)} | {budget(params, m)} | "
                       f"{_step_size(step_sizes[m][f'k{k}'])} | " + " | ".join(cells) + " |")  # fmt: skip
            if k == 5 and m in FINN_SINUSOID_K5:
                published = FINN_SINUSOID_K5[m]
                cells = [f"{published[s]:.2f}" if s in published else "–" for s in steps]
                out.append(f"| *{m}, {FINN_CITATION}* | – | *{FINN_TASKS[m]}* | *{FINN_STEP_SIZES[m]}* | "
                           + " | ".join(cells) + " |")  # fmt: skip
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

MIXED_CAPTION = (
    "Research question 4: every method trained on the mixture of families, query MSE after {steps} steps (K = {k}) "
    "on each family's test tasks, mean and 95% CI (log scale)"
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
        MIXED_CAPTION.format(k=params.train_mixed.k, steps=params.adaptation.steps): "mixed.png",
    }


def section(
    params: SinusoidParams,
    scores: dict,
    curves: pd.DataFrame,
    methods_info: dict,
    paired: dict,
    long_curves: pd.DataFrame,
    unrelated: dict,
    figures: dict[str, str],
    mixed_scores: dict,
    mixed_paired: dict,
) -> str:
    """The sinusoid section of the report as markdown, from the evaluation's tables. ``figures`` maps a
    caption to a path relative to the report."""
    scores = mark_blowups(scores)
    paired = mark_paired(paired, scores)
    unrelated = {family: mark_blowups(by_method) for family, by_method in unrelated.items()}
    mixed_scores = {family: mark_blowups(by_method) for family, by_method in mixed_scores.items()}
    mixed_paired = {f: mark_paired(by_other, mixed_scores.get(f, {})) for f, by_other in mixed_paired.items()}
    cfg = params.evaluate_fewshot
    methods = list(cfg.methods)
    step_sizes = {m: methods_info[m]["step_sizes"] for m in methods}
    steps, optimizer = params.adaptation.steps, params.adaptation.optimizer.upper()
    n_test, n_query = params.generate_tasks.n_test, params.generate_tasks.n_query
    long_setup = LONG_SETUP.format(**_long_setup(params))
    families = {name: f.description for name, f in UNRELATED_FAMILIES.items()}
    reference = cfg.reml_reference
    replicates = len(params.replicates)
    checks = sanity_checks(curves, params.adaptation.shots, steps) if {"scratch", "pretrained", "oracle"} <= set(
        methods) else ""  # fmt: skip
    figure_md = "\n\n".join(f"![{caption}]({path})\n\n*{caption}*" for caption, path in figures.items())
    paired_steps = [s for s in (0, 1, steps) if s <= steps]
    return f"""## Sinusoid regression (Finn et al. 2017, Sec. 5.1)

Every method is scored by the same harness on the same {n_test} fixed test tasks: its initial
network is fine-tuned with {optimizer} on the K support points for up to {steps} full-batch
steps, and the MSE on {n_query} held-out query points per task is recorded after every step. Every
trained method ran {replicates} times (`replicates`: seeds); a cell is the mean over tasks of each task's
MSE averaged over the runs, ± the 95% CI over tasks (1.96·std/√{n_test}), and in brackets the standard
deviation of the runs' own means (how much retraining moves the number). Where fine-tuning diverged on some
task (a non-finite MSE) the cell gives that count and the median instead of the mean; a finite mean above
10× the worst mean before adaptation of its K (a fine-tune that blew up on some tasks without overflowing,
the figures' rule) is shown as "blew up" with its median and is not compared. `training tasks`
is what one run trained on. Step sizes of `scratch`, `scratch_deep`, `pretrained`, `oracle` and the REML
rows were tuned for each K on separate validation tasks (lowest mean query MSE over steps 1..{steps}).
`oracle` sees the true amplitude and phase: its step-0 error is the floor. `scratch_deep` has REML's
depth; `maml_matched` and `pretrained_matched` see as many training tasks as one REML run.
Published numbers (italic) are Finn et al.'s, on their own 600 test tasks; they published no CIs.

### Query MSE

{sinusoid_tables(scores, methods, step_sizes, params)}
### Sanity checks

{checks or "(needs scratch, pretrained and oracle)"}

### Figures

{figure_md}

## Research questions

REML rows: the policy composes one network per test task from the pool, reading only the K support
points (`reml_*`) or, labelled `_oracle`, the true amplitude and phase as in the thesis; the pool is
frozen and no query point is seen before scoring. The network is then fine-tuned by the same harness
as every other method, with a step size tuned on validation tasks. The questions are answered for one
REML row, `{reference}` (`evaluate_fewshot.reml_reference`, fixed in params before any test task is scored;
no agent is picked by its test score). `reml_random` composes every test task's network uniformly at
random from the same trained pools, `reml_fixed` uses for every task the one network the agent composed most
often on the validation tasks: they answer whether the agent's choices matter.

### RQ1: does REML enable fast learning on new tasks?

Paired differences: `{reference}` minus the other method on each test task (the same tasks, in the
same order), mean ± 95% CI over tasks; lower (negative) favours REML, and "lower" or "higher" means the
CI excludes 0.

{paired_table(paired, params, paired_steps)}

{research_question_1(scores, paired, params, long_curves)}

#### Which variant? Chosen on validation tasks

Each REML variant's validation objective (the mean query MSE over steps 1..{steps} on the validation tasks,
at the step size tuned there; the quantity every method's step size is tuned by), mean over its runs with
the runs' standard deviation in brackets. No test task enters this choice.

{variant_choice(methods_info, methods, reference, params.adaptation.shots)}

The thesis's own figure, {long_setup}, is `long_finetune.png` above.

### RQ3: is REML robust to unrelated tasks?

Every method that does not read the true task parameters, on {len(families)} task families never seen in
meta-training (same input range, same harness and step sizes as in-distribution):
{chr(10).join(f"- {name.replace('_', ' ')}: {text}" for name, text in families.items())}

{research_question_3(unrelated, reference, cfg.unrelated_k, steps)}

{unrelated_table(unrelated, params, cfg.unrelated_k, (0, steps))}

### RQ4: where modularity should pay: training on a mixture of families

The questions above train on sinusoids only. Here every method trains on a mixture: each training task's
family is drawn uniformly from {", ".join(f.replace("_", " ") for f in params.train_mixed.families)}
(`train_mixed`), with the same budget as in the main tables, {replicates} run(s) each; each is then scored on every
family's fixed test set (the sinusoid test tasks and research question 3's, which no method trained on) at
K = {params.train_mixed.k}. Step sizes, including `scratch`'s, are tuned on the mixture's own validation
tasks ({params.train_mixed.n_val} per family); `reml_random` and `reml_fixed` use the pools of
`{params.train_mixed.reference}` (`train_mixed.reference`, fixed before testing). A single MAML
initialisation has to serve every family; a composer can choose different layers for each.

{research_question_4(mixed_paired, params, steps)}

{research_question_3(mixed_scores, params.train_mixed.reference, params.train_mixed.k, steps)}

Paired differences, `{params.train_mixed.reference}` minus each other method on the same test tasks:

{mixed_paired_table(mixed_paired, params, paired_steps)}

{unrelated_table(mixed_scores, params, params.train_mixed.k, (0, 1, steps), in_distribution="sinusoid")}"""


# --------------------------------------------------------------------------- the report's status table

FAMILY, MIXTURE = "sinusoid", "sinusoid mixture (RQ4)"
SHARED_STAGES = {"generate_tasks": FAMILY, "evaluate_fewshot": FAMILY, "make_figures": FAMILY,
                 "evaluate_mixed": MIXTURE}  # fmt: skip


def stage_owner(stage: str) -> tuple[str, str] | None:
    """The status-table row (family, method) a sinusoid stage belongs to; None for another family's."""
    base, _, item = stage.partition("@")
    if base in SHARED_STAGES:
        return SHARED_STAGES[base], SHARED
    if base == "train_reml":
        agent, encoding, variant, _ = item.split("-")
        return FAMILY, reml_method(agent, encoding, variant)
    if base == "train_oracle":
        return FAMILY, "oracle"
    if base in ("train_scratch", "train_pretrained", "train_maml", "train_meta_once"):
        return FAMILY, item.split("-")[0]
    if base == "train_mixed":
        return MIXTURE, item.rsplit("-", 1)[0]
    return None


def _brief(leaves: dict | None, step: int) -> str:
    if not leaves:
        return "–"
    if leaves.get(f"diverged_step{step}", 0):
        median = leaves.get(f"median_step{step}")
        count = leaves[f"diverged_step{step}"]
        return f"median {_num(median)} ({count} diverged)" if median is not None else "diverged"
    if leaves.get(f"blown_step{step}"):
        return f"median {_num(leaves[f'median_step{step}'])} (blew up)"
    mean = leaves.get(f"mse_step{step}")
    return _num(mean) if mean is not None and math.isfinite(mean) else "diverged"


def _untrained(method: str) -> str:
    return "in the REML runs" if method in REML_ABLATIONS else "–"


def status_rows(params: SinusoidParams, scores: dict, mixed_scores: dict) -> tuple[list[StatusRow], str]:
    """The sinusoid rows of the report's status table, and what their headline cell is: the query MSE at
    the smallest K after 1 and the last step (Finn's Table 2 has K = 5 after 1, 5 and 10 steps)."""
    k, last = min(params.adaptation.shots), params.adaptation.steps
    scores = mark_blowups(scores)
    mixed_scores = {family: mark_blowups(by_method) for family, by_method in mixed_scores.items()}
    rows = []
    for m in params.evaluate_fewshot.methods:
        leaves = scores.get(m, {}).get(f"k{k}")
        published = FINN_SINUSOID_K5.get(m, {}) if k == 5 else {}
        finn = " / ".join(f"{published[s]:.2f}" for s in (1, last)) if {1, last} <= set(published) else ""
        rows.append(StatusRow(FAMILY, m, leaves.get("n_runs", 1) if leaves else 0, budget(params, m),
                              " / ".join(_brief(leaves, s) for s in (1, last)), finn, _untrained(m)))  # fmt: skip
    rows.append(StatusRow(FAMILY, SHARED, 1, f"{params.generate_tasks.n_test} test tasks"))
    mixed = mixed_scores.get(FAMILY, {})
    mk = params.train_mixed.k
    for m in params.train_mixed.methods:
        leaves = mixed.get(m, {}).get(f"k{mk}")
        rows.append(StatusRow(MIXTURE, m, len(params.runs(m)) if leaves else 0, budget(params, m),
                              f"K = {mk}, sinusoids: {_brief(leaves, last)}", untrained=_untrained(m)))  # fmt: skip
    rows.append(StatusRow(MIXTURE, SHARED, 1, f"{len(mixed_scores)} families"))
    return rows, f"query MSE at K = {k} after 1 / {last} steps"
