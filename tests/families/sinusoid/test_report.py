"""The research-question text survives diverged runs (null or inf in the metrics) and says so, and
never draws a verdict from a non-finite mean."""

import math

import pandas as pd

from reml.families.sinusoid import config
from reml.families.sinusoid.report import (
    paired_table,
    research_question_1,
    research_question_3,
    score_cell,
    unrelated_table,
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
