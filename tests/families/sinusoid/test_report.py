"""The research-question text survives diverged runs (null or inf in the metrics) and says so, and
never draws a verdict from a non-finite mean."""

import math

import pandas as pd

from reml.families.sinusoid import config
from reml.families.sinusoid.report import (
    paired_table,
    research_question_1,
    research_question_3,
    research_question_4,
    score_cell,
    unrelated_table,
    variant_choice,
)


def leaves(step0, step10, ci10, diverged10=0, median10=None, sd10=None):
    return {"k10": {"mse_step0": step0, "ci95_step0": 0.1, "diverged_step0": 0, "median_step0": step0,
                    "mse_step10": step10, "ci95_step10": ci10, "diverged_step10": diverged10,
                    "median_step10": step10 if median10 is None else median10, "sd_seeds_step10": sd10}}  # fmt: skip


def test_rq3_with_a_diverged_mean_and_a_missing_ci():
    unrelated = {
        "in_distribution": {
            "scratch": leaves(4.0, 3.9, 0.3), "maml": leaves(2.9, 0.1, 0.02), "reml_maskable": leaves(5, 2, 0.2)
        },
        "lines": {
            "scratch": leaves(4.5, 0.5, 0.1), "maml": leaves(5.0, None, None, diverged10=3, median10=0.4),
            "reml_maskable": leaves(6.0, 5e199, None),
        },
        "empty": {},
    }  # fmt: skip
    text = research_question_3(unrelated, "reml_maskable", 10, 10)
    assert "- lines: best scratch (0.500 ± 0.100)" in text
    lines = text.split("- lines")[1]
    assert "5e+199 ± diverged" not in lines  # a null CI is not printed as a number, nor ranked
    assert "maml (3 tasks, median 0.400)" in lines and "reml_maskable (no finite mean or CI)" in lines
    assert "ranks" not in lines.split("\n")[0]
    assert "empty" not in text
    params = config.load()
    table = unrelated_table(unrelated, params, 10, (0, 10))
    assert "| maml | 375,000 | 0.100 ± 0.020 | diverged on 3/200, median 0.400 | – |" in table


def test_a_cell_gives_the_seed_spread_and_for_diverged_tasks_the_count_and_median():
    assert score_cell(leaves(1, 0.5, 0.05, sd10=0.02)["k10"], 10, 600) == "0.500 ± 0.050 (sd 0.020)"
    assert score_cell(leaves(1, math.inf, None, 2, 0.38)["k10"], 10, 600) == "diverged on 2/600, median 0.380"


def test_paired_verdicts_need_a_ci_that_excludes_zero_and_finite_values():
    params = config.load()
    by_k = {f"k{k}": {"diff_step0": -0.5, "ci95_step0": 0.1, "diff_step1": 0.05, "ci95_step1": 0.1,
                      "diff_step10": 0.05, "ci95_step10": 0.1}
            for k in params.adaptation.shots}  # fmt: skip
    broken = {f"k{k}": {"diff_step0": None, "ci95_step0": None, "diff_step1": 1.0, "ci95_step1": 0.2,
                        "diff_step10": 1.0, "ci95_step10": 0.2}
              for k in params.adaptation.shots}  # fmt: skip
    paired = {"reference": "reml_maskable", "reml_random": by_k, "maml": broken}
    table = paired_table(paired, params, (0, 10))
    assert "| reml_random | 3,000 (15,000 env steps) | 10 | -0.500 ± 0.100 (lower) | +0.050 ± 0.100 (level) |" in table
    assert "| maml | 375,000 | 10 | not comparable (diverged on some task) | +1.000 ± 0.200 (higher) |" in table
    text = research_question_1({}, paired, params, pd.DataFrame({"step": [0]}))
    assert "against reml_random: lower in 3, level in 6 of 9 cells" in text
    assert "against maml: higher in 6, not comparable in 3 of 9 cells" in text


def tuned(*objectives):
    """One run's step_size_tuning: at each K (5, 10) the chosen step size 0.01 scored ``objective``."""
    return {"step_size_tuning": {f"k{k}": {"chosen": 0.01, "val_mse_by_lr": {"0.001": 9.0, "0.01": v, "0.1": None}}
                                 for k, v in zip((5, 10), objectives, strict=True)}}  # fmt: skip


def test_the_variant_is_chosen_by_its_validation_objective_and_a_diverged_one_never_wins():
    runs = {
        "reml_maskable": [tuned(3.0, 2.0), tuned(3.2, 2.2)],  # mean over K 2.6
        "reml_maskable_sgd_inner": [tuned(2.0, 3.5), tuned(2.2, 3.3)],  # 2.75
        "reml_maskable_relative": [tuned(0.1, None), tuned(0.1, 0.1)],  # diverged on one run
        "reml_ppo": [tuned(0.5, 0.5)],  # another agent: not a variant of the reference
        "maml": [tuned(0.1, 0.1)],
    }
    text = variant_choice({m: {"runs": r} for m, r in runs.items()}, list(runs), "reml_maskable", (5, 10))
    assert "| thesis (default) | 2 | 3.100 [0.141] | 2.100 [0.141] | 2.600 |" in text
    assert "| relative | 2 | 0.100 [0.000] | diverged in 1 run(s) | diverged |" in text
    assert "Chosen on validation tasks: **thesis**" in text and "reml_ppo" not in text and "maml" not in text
    assert "run the thesis's rule too" in text
    runs["reml_maskable_relative"] = [tuned(0.1, 0.1)]
    text = variant_choice({m: {"runs": r} for m, r in runs.items()}, list(runs), "reml_maskable", (5, 10))
    assert "**relative**" in text and "`relative` is not implemented in classification and meta-RL" in text
    runs["reml_maskable_sgd_inner"] = [tuned(0.05, 0.05)]
    text = variant_choice({m: {"runs": r} for m, r in runs.items()}, list(runs), "reml_maskable", (5, 10))
    assert "**sgd_inner**" in text and "| sgd_inner | 1 | 0.050 | 0.050 | 0.050 |" in text
    assert "already train each built network with their harness's own rule" in text
    only = variant_choice({"reml_maskable": {"runs": runs["reml_maskable"]}}, ["reml_maskable"], "reml_maskable", (5,))
    assert only.startswith("(needs a variant")


def test_rq4_counts_a_family_only_where_the_paired_ci_excludes_zero_and_names_diverged_cells():
    params = config.load()

    def diff(d, ci):
        return {"k10": {"diff_step10": d, "ci95_step10": ci}}

    paired = {
        "sinusoid": {"reference": "reml_maskable", "maml": diff(-0.5, 0.1), "maml_matched": diff(-0.05, 0.1),
                     "reml_random": diff(0.3, 0.1)},
        "lines": {"reference": "reml_maskable", "maml": diff(None, None), "maml_matched": diff(-1.0, 0.2),
                  "reml_random": diff(-0.2, 0.1)},
    }  # fmt: skip
    text = research_question_4(paired, params, 10)
    assert (
        "- sinusoid: reml_maskable against maml -0.500 ± 0.100 (lower); against maml_matched -0.050 ± 0.100 (level)"
        in text
    )
    assert "against maml not comparable (diverged on some task)" in text.split("- lines")[1]
    assert "on 1 of 2 families against maml, 1 of 2 against maml_matched" in text
    assert "1 of 2 against random compositions" in text


def test_a_blown_up_paired_difference_is_written_in_three_significant_digits():
    """MAML on the mixture reached a finite 3.9e26 on one family: the fixed-point form printed 27 digits."""
    from reml.families.sinusoid.report import paired_word

    assert paired_word(-3.9247e26, 7.686e26) == "-3.92e+26 ± 7.69e+26 (level)"
    assert paired_word(0.5, 0.1) == "+0.500 ± 0.100 (higher)"
    assert paired_word(float("nan"), 0.1) == "not comparable (diverged on some task)"


def test_a_finite_blow_up_is_shown_with_its_median_and_never_compared_as_in_the_figures():
    """MAML on the mixture's sinusoids: a finite mean of 3.9e26 (a few tasks exploded without overflowing)
    was printed as a mean and its paired difference called "level". Above 10x the worst mean before
    adaptation, the figures' limit, the cell says it blew up and gives the median; nothing is compared."""
    from reml.core.figures import log_limits
    from reml.families.sinusoid.report import mark_blowups, mark_paired, paired_cell

    scores = {"scratch": leaves(4.0, 3.9, 0.3), "maml": leaves(3.0, 3.9e26, 7.7e26, median10=0.187),
              "reml_maskable": leaves(5.0, 3.5, 0.3)}  # fmt: skip
    marked = mark_blowups(scores)
    assert score_cell(marked["maml"]["k10"], 10, 600) == "blew up (mean 3.9e+26), median 0.187"
    assert score_cell(marked["scratch"]["k10"], 10, 600) == "3.900 ± 0.300"
    assert score_cell(mark_blowups({"m": leaves(4.0, 40.0, 1.0)})["m"]["k10"], 10, 600) == "40.000 ± 1.000"  # at 10x
    assert log_limits([4.0, 3.0, 5.0], [3.9, 3.5, 3.9e26])[1] == 50.0  # the figures' top: the same limit
    text = research_question_3({"sinusoid": marked}, "reml_maskable", 10, 10)
    assert "maml (blew up, median 0.187)" in text and "ranks 1 of 2" in text
    differences = {"reference": "reml_maskable", "maml": {"k10": {"diff_step10": -3.9e26, "ci95_step10": 7.7e26}},
                   "scratch": {"k10": {"diff_step10": -0.4, "ci95_step10": 0.1}}}  # fmt: skip
    paired = mark_paired(differences, marked)
    assert paired_cell(paired["maml"]["k10"], 10) == "not comparable (blew up on some task)"
    assert paired_cell(paired["scratch"]["k10"], 10) == "-0.400 ± 0.100 (lower)"
    assert "(level)" not in research_question_4({"sinusoid": paired}, config.load(), 10)
