"""The few-shot classification section of the report, written from the metrics JSON only."""

from __future__ import annotations

from reml.core.compare import versus

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


def _versus(a: tuple, b: tuple, name: str) -> str:
    """Accuracy ``a`` against ``b`` (each (mean, ci), None if diverged), in the reports' one vocabulary."""
    return versus(a, b, name, _pct(*b))


def research_question_2(results: dict, settings: list[str], steps: int) -> str:
    """Does REML carry over to classification? Each REML agent against scratch and MAML, per setting."""
    agents = [m for m in results if m.startswith("reml_")]
    if not agents or "scratch" not in results or "maml" not in results:
        return "(needs scratch, maml and at least one REML agent)"
    lines = []
    for setting in settings:
        for step in sorted({1, steps}):
            key = f"step{step}"
            at = {m: (results[m][setting][f"acc_{key}"], results[m][setting][f"ci95_{key}"]) for m in results}
            for agent in agents:
                lines.append(
                    f"- {setting}, {step} step{'s' if step != 1 else ''}: {agent} {_pct(*at[agent])}: "
                    f"{_versus(at[agent], at['scratch'], 'scratch')}; {_versus(at[agent], at['maml'], 'maml')}"
                )
    return "\n".join(lines)


def section(metrics: dict, methods_info: dict, figure: str) -> str:
    steps = methods_info["steps"]
    dataset = methods_info["dataset"]
    results = metrics[dataset]
    settings = list(next(iter(results.values())))
    shown = sorted({0, 1, steps})
    lines = [
        "## Few-shot classification",
        "",
        f"Data: {DATASET_NOTES[dataset]}. {methods_info['n_test']} fixed test episodes per setting, the same for "
        f"every method; query accuracy (%) after 0, 1 and {steps} SGD steps on the support images "
        "(mean ± 95% CI over episodes). Step sizes: the meta-learners use their inner α; scratch, pretrained "
        "and REML use the one tuned on validation episodes (column 'step size').",
        "",
    ]
    for setting in settings:
        n, k = setting.rstrip("s").split("w")
        lines += [f"#### {n}-way {k}-shot", "", "| method | step size | " + " | ".join(
            f"{s} step{'s' if s != 1 else ''}" for s in shown) + " |",  # fmt: skip
            "|---|---|" + "---|" * len(shown)]  # fmt: skip
        for method, by_setting in results.items():
            leaves = by_setting[setting]
            lr = methods_info["methods"][method][setting]["step_size"]
            cells = [_pct(leaves[f"acc_step{s}"], leaves[f"ci95_step{s}"]) for s in shown]
            lines.append(f"| {method} | {lr:g} | " + " | ".join(cells) + " |")
        if setting in FINN_OMNIGLOT:
            cells = ["–"] * (len(shown) - 1) + [f"*{FINN_OMNIGLOT[setting]}* (after its test steps)"]
            lines.append(f"| *maml, {FINN_OMNIGLOT_CITATION}* | *α* | " + " | ".join(cells) + " |")
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
        "support images; the composed net is then fine-tuned by the same harness. Higher or lower means the 95% "
        "CIs do not overlap, level with that they do.",
        "",
        research_question_2(results, settings, steps),
        "",
        composition_lines(methods_info, settings),
        "",
    ]
    return "\n".join(lines)


def best_methods(results: dict, setting: str, steps: int) -> str:
    """The most accurate method after ``steps`` steps, and every method whose 95% CI overlaps its own."""
    at = {m: (results[m][setting][f"acc_step{steps}"], results[m][setting][f"ci95_step{steps}"]) for m in results}
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
        if not agent.startswith("reml_"):
            continue
        parts = [
            f"{s}: {by_setting[s]['distinct_networks']} distinct network(s), "
            f"{100 * by_setting[s]['invalid_rate']:.0f}% of choices invalid"
            for s in settings
        ]
        lines.append(f"- {agent}: " + "; ".join(parts))
    return "\n".join(lines)
