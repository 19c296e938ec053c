"""The few-shot classification section of the report, written from the metrics JSON only."""

from __future__ import annotations

from reml.core.compare import paired, relation
from reml.core.report import SHARED, StatusRow

# Finn et al. 2017, Table 1: Omniglot test accuracy (%) of MAML with the conv net, 95% CI. Real Omniglot,
# not the glyph set this benchmark generates by default: shown beside our numbers, never compared as equal.
FINN_OMNIGLOT: dict[str, str] = {
    "5w1s": "98.7 ± 0.4",
    "5w5s": "99.9 ± 0.1",
    "20w1s": "95.8 ± 0.3",
    "20w5s": "98.9 ± 0.2",
}
FINN_OMNIGLOT_CITATION = "Finn et al. 2017, Table 1 (real Omniglot)"

DATASET_NOTES = {
    "glyphs": "the offline glyph set (letters of 14 scripts rendered from matplotlib's fonts; not Omniglot)",
    "omniglot": "Omniglot (Finn et al.'s split, 90-degree rotations as extra classes)",
    "miniimagenet": "MiniImageNet (Ravi & Larochelle split)",
}


def _pct(mean: float | None, ci: float | None) -> str:
    if mean is None or ci is None:
        return "diverged"
    return f"{100 * mean:.1f} ± {100 * ci:.1f}"


def _steps_word(step: int) -> str:
    return f"{step} step{'s' if step != 1 else ''}"


def _at(leaves: dict, step: int) -> tuple[float | None, float | None]:
    """(mean, CI) after ``step``; None where some episode diverged (no verdict from a non-finite mean)."""
    if leaves.get(f"diverged_step{step}", 0):
        return None, None
    return leaves.get(f"acc_step{step}"), leaves.get(f"ci95_step{step}")


def score_cell(leaves: dict, step: int, n_test: int) -> str:
    """Mean ± 95% CI over episodes (%), then the sd of the runs' means where there are several; where
    fine-tuning diverged on some episodes, their count and the median instead of the mean."""
    diverged = leaves.get(f"diverged_step{step}", 0)
    if diverged:
        median = leaves.get(f"median_step{step}")
        shown = f"{100 * median:.1f}" if median is not None else "diverged"
        return f"diverged on {diverged}/{n_test}, median {shown}"
    text = _pct(leaves[f"acc_step{step}"], leaves[f"ci95_step{step}"])
    sd = leaves.get(f"sd_seeds_step{step}")
    return f"{text} (sd {100 * sd:.1f})" if sd is not None and text != "diverged" else text


def budget_cell(budget: dict | None) -> str:
    """What one run trained on: episodes and labelled images."""
    if not budget:
        return "–"
    episodes, images = budget["episodes"], budget["images"]
    if not episodes and not images:
        return "none"
    if not episodes:
        return f"{images:,} images"
    return f"{episodes:,} episodes ({images:,} images)"


def _step_size(value: float | list[float]) -> str:
    """A step size, or one per run joined by '/' (shown once when they agree)."""
    if isinstance(value, list):
        return f"{value[0]:g}" if len(set(value)) == 1 else "/".join(f"{v:g}" for v in value)
    return f"{value:g}"


def _paired(diff: dict, step: int, name: str) -> str:
    """A paired accuracy difference (reference minus ``name``), in points, in the reports' vocabulary."""
    mean, ci = diff.get(f"diff_step{step}"), diff.get(f"ci95_step{step}")
    scaled = (None if mean is None else 100 * mean, None if ci is None else 100 * ci)
    return paired(scaled, name)


def paired_table(methods_info: dict, settings: list[str], steps: list[int]) -> str:
    """The reference REML row minus each compared method, episode by episode, per setting and step."""
    pairs, reference = methods_info.get("paired") or {}, methods_info.get("reference")
    if not reference or not pairs:
        return "(no reference REML row)"
    lines = [f"Paired differences, {reference} minus each method (accuracy points, mean ± 95% CI over the same "
             "test episodes; higher or lower when the CI excludes 0):", "",
             "| setting | method | " + " | ".join(_steps_word(s) for s in steps) + " |",
             "|---|---|" + "---|" * len(steps)]  # fmt: skip
    tally: dict[str, list[str]] = {}
    for setting in settings:
        for other, diff in pairs.get(setting, {}).items():
            lines.append(f"| {setting} | {other} | " + " | ".join(_paired(diff, s, other) for s in steps) + " |")
            tally.setdefault(other, []).extend(_relation(diff, s) for s in steps)
    counts = [f"{m}: " + ", ".join(f"{r.count(w)} {w}" for w in ("higher", "level", "lower", "not comparable"))
              for m, r in tally.items()]  # fmt: skip
    return "\n".join(
        [*lines, "", f"Tally over settings and steps ({reference} against each): " + "; ".join(counts) + "."]
    )


def _relation(diff: dict, step: int) -> str:
    rel = relation((diff.get(f"diff_step{step}"), diff.get(f"ci95_step{step}")), (0.0, 0.0))
    return rel or "not comparable"


def research_question_2(methods_info: dict, settings: list[str], steps: int) -> str:
    """Does REML carry over to classification? The reference REML row (chosen before testing) against
    scratch and MAML, per setting, from the paired differences."""
    reference, pairs = methods_info.get("reference"), methods_info.get("paired") or {}
    if not reference or not all({"scratch", "maml"} <= set(pairs.get(s, {})) for s in settings):
        return "(needs scratch, maml and the reference REML row)"
    lines = []
    for setting in settings:
        for step in sorted({1, steps}):
            diff = pairs[setting]
            lines.append(
                f"- {setting}, {_steps_word(step)}: {reference} "
                f"{_paired(diff['scratch'], step, 'scratch')}; {_paired(diff['maml'], step, 'maml')}"
            )
    return "\n".join(lines)


def section(metrics: dict, methods_info: dict, figure: str) -> str:
    steps = methods_info["steps"]
    dataset = methods_info["dataset"]
    n_test = methods_info["n_test"]
    results = metrics[dataset]
    settings = list(next(iter(results.values())))
    shown = sorted({0, 1, steps})
    reference = methods_info.get("reference")
    lines = [
        "## Few-shot classification",
        "",
        f"Data: {DATASET_NOTES[dataset]}. {n_test} fixed test episodes per setting, the same for "
        f"every method; query accuracy (%) after 0, 1 and {steps} SGD steps on the support images "
        "(mean ± 95% CI over episodes of the per-episode mean over runs, then in brackets the sd of the runs' "
        "means; column 'runs'). Step sizes: the meta-learners use their inner α; scratch, pretrained "
        "and REML use the one tuned on validation episodes (column 'step size', one per run where they differ). "
        "'Training' is what one run trained on: N-way K-shot episodes and the labelled images in them. "
        "maml_matched is MAML at REML's number of training episodes (one per composed network); "
        "pretrained_matched is pretrained with one Adam step per REML training episode, on batches of a 5-way "
        "episode's labelled images at mean K (its images are in the column; for larger N, REML's episodes hold "
        "more); reml_random (uniformly random valid compositions) and reml_fixed (the "
        f"composition {reference or 'the reference agent'} chose most on validation episodes) use the "
        "reference agent's trained pools, with step sizes tuned on validation episodes.",
        "",
    ]
    for setting in settings:
        n, k = setting.rstrip("s").split("w")
        lines += [f"#### {n}-way {k}-shot", "", "| method | runs | training | step size | " + " | ".join(
            _steps_word(s) for s in shown) + " |",  # fmt: skip
            "|---|---|---|---|" + "---|" * len(shown)]  # fmt: skip
        for method, by_setting in results.items():
            leaves = by_setting[setting]
            info = methods_info["methods"][method][setting]
            cells = [score_cell(leaves, s, n_test) for s in shown]
            lines.append(f"| {method} | {leaves.get('n_runs', 1)} | {budget_cell(info.get('budget'))} | "
                         f"{_step_size(info['step_size'])} | " + " | ".join(cells) + " |")  # fmt: skip
        if setting in FINN_OMNIGLOT:
            cells = ["–"] * (len(shown) - 1) + [f"*{FINN_OMNIGLOT[setting]}* (after its test steps)"]
            lines.append(f"| *maml, {FINN_OMNIGLOT_CITATION}* | – | – | *α* | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        f"Best after {steps} steps: " + "; ".join(best_methods(results, s, steps) for s in settings) + ".",
        "",
        f"![Query accuracy vs SGD steps on the test episodes, mean and 95% CI]({figure})",
        "",
        "Reading the table: labels are permuted in every episode, so before any step no method can know which "
        "label is which and step 0 is at chance (1/N); 20.0 ± 0.0 means every logit ties (a zero or "
        "label-symmetric head) and the argmax is label 0. Batch norm normalises with the statistics of the batch "
        "it sees, as in Finn et al.'s code, so the query images of an episode are normalised together "
        "(transductive), for every method alike.",
        "",
    ]
    if dataset != "omniglot":
        lines += [
            "The Finn et al. row is their MAML on real Omniglot: a different dataset, shown for scale only.",
            "",
        ]
    lines += [
        "### RQ2: is REML model-agnostic? (classification)",
        "",
        "The REML agents compose a conv net per episode from a pool of conv blocks and heads, reading only the "
        "support images; the composed net is then fine-tuned by the same harness. The question is asked of "
        f"one row fixed before testing, {reference} (classification.reml.reference), never of the agent that "
        "scored best on the test episodes; each verdict is its paired difference, episode by episode.",
        "",
        research_question_2(methods_info, settings, steps),
        "",
        paired_table(methods_info, settings, sorted({1, steps})),
        "",
        composition_lines(methods_info, settings),
        "",
    ]
    return "\n".join(lines)


def best_methods(results: dict, setting: str, steps: int) -> str:
    """The most accurate method after ``steps`` steps, and every method whose 95% CI overlaps its own
    (a row with diverged episodes is left out: no verdict from a non-finite mean)."""
    at = {m: _at(results[m][setting], steps) for m in results}
    scored = {m: v for m, v in at.items() if v[0] is not None and v[1] is not None}
    if not scored:
        return f"{setting}: every method diverged"
    best = max(scored, key=lambda m: scored[m][0])
    low = scored[best][0] - scored[best][1]
    level = [m for m, (mean, ci) in scored.items() if m != best and mean + ci >= low]
    text = f"{setting}: {best} ({_pct(*scored[best])})"
    if level:
        text += ", level with " + ", ".join(f"{m} ({_pct(*scored[m])})" for m in level) + " (CIs overlap)"
    return text


def composition_lines(methods_info: dict, settings: list[str]) -> str:
    """What the REML agents composed on the test episodes: distinct networks and remapped choices."""
    n_test = methods_info["n_test"]
    lines = [f"What the REML agents composed on the {n_test} test episodes (choices of an invalid block are "
             "remapped onto a valid one; MaskablePPO never makes one):", ""]  # fmt: skip
    for agent, by_setting in methods_info["methods"].items():
        if not all("distinct_networks" in by_setting[s] for s in settings):
            continue
        parts = [
            f"{s}: {_distinct(by_setting[s]['distinct_networks'])} distinct network(s), "
            f"{100 * by_setting[s]['invalid_rate']:.0f}% of choices invalid"
            for s in settings
        ]
        lines.append(f"- {agent}: " + "; ".join(parts))
    return "\n".join(lines)


def _distinct(value: int | list[int]) -> str:
    """Distinct networks composed, one count per run joined by '/'."""
    return "/".join(map(str, value)) if isinstance(value, list) else str(value)


# --------------------------------------------------------------------------- the report's status table

SHARED_STAGES = ("generate_images", "evaluate_classification", "make_classification_figures")
TRAINING_STAGES = ("train_pretrained_classifier", "train_classifier", "train_classifier_replicated",
                   "train_reml_classifier")  # fmt: skip


def family_label(methods_info: dict) -> str:
    return f"classification ({methods_info['dataset']})"


def stage_owner(stage: str, family: str) -> tuple[str, str] | None:
    """The status-table row (``family``, method) a classification stage belongs to; None for another
    family's. Every training stage's matrix key starts with its method (REML: its agent)."""
    base, _, item = stage.partition("@")
    if base in SHARED_STAGES:
        return family, SHARED
    if base in TRAINING_STAGES:
        return family, item.split("-")[0]
    return None


def status_rows(metrics: dict, methods_info: dict) -> tuple[list[StatusRow], str]:
    """The classification rows of the report's status table and what their headline cell is: the query
    accuracy after the last step in each N-way K-shot setting (Finn's Table 1, on real Omniglot)."""
    steps, family = methods_info["steps"], family_label(methods_info)
    results = metrics[methods_info["dataset"]]
    omniglot = methods_info["dataset"] == "omniglot"
    rows = []
    for method, by_setting in results.items():
        info = methods_info["methods"][method]
        budgets = {budget_cell(info[s].get("budget")) for s in by_setting}
        budget = next(iter(budgets)) if len(budgets) == 1 else "; ".join(
            f"{s}: {budget_cell(info[s].get('budget'))}" for s in by_setting)  # fmt: skip
        ours = ", ".join(f"{s} {_pct(*_at(leaves, steps)).split(' ±')[0]}" for s, leaves in by_setting.items())
        published = ", ".join(f"{s} {FINN_OMNIGLOT[s].split(' ±')[0]}" for s in by_setting if s in FINN_OMNIGLOT)
        untrained = "in the REML runs" if method.startswith("reml_") else "in the scoring (no training)"
        rows.append(StatusRow(family, method, max(v.get("n_runs", 1) for v in by_setting.values()), budget, ours,
                              f"{published} (Omniglot{'' if omniglot else ', not this data'})"
                              if method == "maml" and published else "", untrained))  # fmt: skip
    rows.append(StatusRow(family, SHARED, 1, f"{methods_info['n_test']} test episodes per setting"))
    return rows, f"query accuracy (%) after {steps} steps per N-way K-shot setting"
