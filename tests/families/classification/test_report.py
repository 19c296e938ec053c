"""The classification section of the report."""

from reml.families.classification.report import (
    best_methods,
    composition_lines,
    paired_table,
    research_question_2,
    section,
)


def test_report_names_every_method_level_with_the_best_and_what_reml_composed():
    def leaf(mean, ci):
        return {"acc_step5": mean, "ci95_step5": ci}

    results = {"maml": {"5w1s": leaf(0.90, 0.02)}, "reptile": {"5w1s": leaf(0.87, 0.02)},
               "scratch": {"5w1s": leaf(0.60, 0.03)}, "fomaml": {"5w1s": leaf(None, None)}}  # fmt: skip
    assert best_methods(results, "5w1s", 5) == "5w1s: maml (90.0 ± 2.0), level with reptile (87.0 ± 2.0) (CIs overlap)"
    results["reptile"]["5w1s"] = leaf(0.85, 0.02)
    assert best_methods(results, "5w1s", 5) == "5w1s: maml (90.0 ± 2.0)"
    info = {"n_test": 100, "methods": {"maml": {"5w1s": {"step_size": 0.4}},
            "reml_ppo": {"5w1s": {"step_size": 0.2, "invalid_rate": 0.8, "distinct_networks": 3}}}}  # fmt: skip
    text = composition_lines(info, ["5w1s"])
    assert "100 test episodes" in text and "- reml_ppo: 5w1s: 3 distinct network(s), 80% of choices invalid" in text
    assert "maml" not in text


def _leaves(mean, ci, sd=None, diverged=0, median=None, n_runs=3):
    out = {"n_runs": n_runs}
    for s in (0, 1, 5):
        out |= {f"acc_step{s}": mean, f"ci95_step{s}": ci, f"diverged_step{s}": diverged, f"median_step{s}": median}
        if sd is not None:
            out[f"sd_seeds_step{s}"] = sd
    return out


def _diff(mean, ci):
    return {f"{key}_step{s}": v for s in (0, 1, 5) for key, v in (("diff", mean), ("ci95", ci))}


def test_section_shows_runs_budgets_spread_diverged_cells_and_paired_verdicts_for_the_reference_only():
    metrics = {"glyphs": {
        "scratch": {"5w1s": _leaves(0.40, 0.02, sd=0.01)},
        "maml": {"5w1s": _leaves(0.80, 0.02, sd=0.03)},
        "fomaml": {"5w1s": _leaves(None, None, diverged=4, median=0.5, n_runs=1)},
        "reml_maskable": {"5w1s": _leaves(0.60, 0.03, sd=0.02)},
        "reml_ppo": {"5w1s": _leaves(0.95, 0.01, sd=0.02)},
        "reml_random": {"5w1s": _leaves(0.58, 0.03, sd=0.02)},
    }}  # fmt: skip
    meta, reml = {"episodes": 1600, "images": 48000}, {"episodes": 400, "images": 16000}
    budget = {"scratch": {"episodes": 0, "images": 0}, "maml": meta, "fomaml": meta, "reml_maskable": reml,
              "reml_ppo": reml, "reml_random": reml}  # fmt: skip
    methods = {m: {"5w1s": {"step_size": [0.2, 0.4, 0.2] if m != "fomaml" else 0.4, "budget": b}}
               for m, b in budget.items()}  # fmt: skip
    methods["reml_maskable"]["5w1s"] |= {"invalid_rate": 0.0, "distinct_networks": [2, 3, 1]}
    info = {"dataset": "glyphs", "n_test": 100, "steps": 5, "methods": methods, "reference": "reml_maskable",
            "paired": {"5w1s": {"reml_random": _diff(0.02, 0.03), "scratch": _diff(0.2, 0.03),
                                "maml": _diff(-0.2, 0.04)}}}  # fmt: skip
    text = section(metrics, info, "fig.png")
    assert "| scratch | 3 | none | 0.2/0.4/0.2 | 40.0 ± 2.0 (sd 1.0) |" in text
    assert "| maml | 3 | 1,600 episodes (48,000 images) |" in text
    assert "| fomaml | 1 | 1,600 episodes (48,000 images) | 0.4 | diverged on 4/100, median 50.0 |" in text
    assert "| reml_maskable | 3 | 400 episodes (16,000 images) |" in text
    rq2 = text.split("### RQ2")[1]
    assert "- 5w1s, 1 step: reml_maskable higher than scratch (+20.00 ± 3.00); lower than maml (-20.00 ± 4.00)" in rq2
    assert "| 5w1s | reml_random | level with reml_random (+2.00 ± 3.00) |" in rq2
    assert "reml_ppo" not in rq2.split("What the REML agents composed")[0].split("fixed before testing")[1]
    assert "- reml_maskable: 5w1s: 2/3/1 distinct network(s), 0% of choices invalid" in rq2
    assert "- reml_random:" not in rq2.split("What the REML agents composed")[1]  # the ablations compose nothing
    assert "reml_random: 0 higher, 2 level, 0 lower, 0 not comparable" in rq2
    assert "fomaml" not in text.split("Best after 5 steps:")[1].split("\n")[0]  # no verdict from a diverged row


def test_no_paired_verdict_from_a_non_finite_difference():
    info = {"reference": "reml_maskable", "paired": {"5w1s": {"scratch": _diff(None, None), "maml": _diff(0.1, 0.01)}}}
    text = research_question_2(info, ["5w1s"], 5)
    assert "not comparable with scratch (the difference; not finite on some tasks)" in text
    assert "higher than maml (+10.00 ± 1.00)" in text
    assert "needs scratch" in research_question_2({"reference": None, "paired": {}}, ["5w1s"], 5)
    assert paired_table({"reference": None}, ["5w1s"], [1, 5]) == "(no reference REML row)"


def test_the_paired_table_tallies_each_comparison():
    info = {"reference": "reml_maskable", "paired": {"5w1s": {"scratch": _diff(0.2, 0.03), "maml": _diff(None, None)},
                                                     "5w5s": {"scratch": _diff(0.0, 0.03)}}}  # fmt: skip
    text = paired_table(info, ["5w1s", "5w5s"], [1, 5])
    assert "| 5w5s | scratch | level with scratch (+0.00 ± 3.00) | level with scratch (+0.00 ± 3.00) |" in text
    assert (
        "scratch: 2 higher, 2 level, 0 lower, 0 not comparable; maml: 0 higher, 0 level, 0 lower, 2 not comparable"
        in text
    )
