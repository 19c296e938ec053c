"""The research-question text survives diverged runs (null or inf in the metrics) and says so."""

import math

import pandas as pd

from reml.families.sinusoid.report import research_question_1, research_question_3, unrelated_table


def leaves(step0, step10, ci10):
    return {"k10": {"mse_step0": step0, "ci95_step0": 0.1, "mse_step10": step10, "ci95_step10": ci10}}


def test_rq3_with_a_diverged_mean_and_a_missing_ci():
    unrelated = {
        "in_distribution": {
            "scratch": leaves(4.0, 3.9, 0.3), "maml": leaves(2.9, 0.1, 0.02), "reml_ppo": leaves(5, 2, 0.2)
        },
        "lines": {
            "scratch": leaves(4.5, 0.5, 0.1), "maml": leaves(5.0, None, None), "reml_ppo": leaves(6.0, 5e199, None)
        },
        "empty": {},
    }  # fmt: skip
    text = research_question_3(unrelated, 10, 10)
    assert "- lines: best scratch (0.500 ± 0.100)" in text
    lines = text.split("- lines")[1]
    assert "reml_ppo ranks 2 of 3 (5e+199 ± diverged" not in lines  # a null CI is not printed as a number
    assert "reml_ppo ranks 2 of 3 (diverged)" in lines  # finite mean, infinite CI: shown as diverged
    assert "diverged on some tasks (mean after 10 steps above twice the step-0 mean, or not finite) for" in lines
    assert lines.rstrip(".").endswith("reml_ppo, maml") or lines.rstrip(".\n").endswith("reml_ppo, maml")
    assert "empty" not in text
    table = unrelated_table(unrelated, 10, (0, 10))
    assert "| maml | 0.100 ± 0.020 | diverged | – |" in table


def test_rq1_when_scratch_diverged():
    row = {"step": 0}
    for m, v in (("scratch", math.inf), ("pretrained", 2.0), ("maml", 0.5), ("reml_ppo", 3.0)):
        row[f"{m}_k10"], row[f"{m}_k10_ci95"] = v, (math.nan if math.isinf(v) else 0.1)
    curves = pd.DataFrame([row])
    text = research_question_1(
        curves, pd.DataFrame({"step": [0]}), ["scratch", "pretrained", "maml", "reml_ppo"], 10, 0
    )
    # no verdict from a diverged mean: scratch is not comparable, the finite ones are compared by their CIs
    assert "best REML agent reml_ppo 3.000 ± 0.100: not comparable with scratch (diverged; not finite" in text
    assert "higher than pretrained (2.000 ± 0.100); higher than maml (0.500 ± 0.100)." in text
