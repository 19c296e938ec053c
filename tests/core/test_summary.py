"""make results (the report's headline tables) and make verify (scores moved beyond their CI)."""

import json
import subprocess
import sys

from reml.core.headline import headline
from reml.summary import compare, headline_tables, read_scores, render_table, scores
from tests.helpers import REPO

REPORT = """# title
## Sinusoid
intro
### Query MSE
#### K = 5
| method | 1 step |
|---|---|
| maml | 0.7 ± 0.1 |
#### K = 10
| method | 1 step |
|---|---|
| maml | 0.4 ± 0.1 |
### Sanity checks
| not | this |
## Research questions
### RQ1
text
### RQ3
| not | this either |
## Meta-RL
#### nav
| method | 0 steps |
|---|---|
| oracle | -5.1 |
### Against scratch
| no | |
"""


def test_headline_tables_are_each_sections_opening_tables():
    found = headline_tables(REPORT)
    assert [(t, [h for h, _ in tables]) for t, tables in found] == [
        ("Sinusoid", ["K = 5", "K = 10"]),
        ("Meta-RL", ["nav"]),
    ]
    assert render_table(found[0][1][0][1]).splitlines() == ["method  1 step", "------  ---------", "maml    0.7 ± 0.1"]


def test_headline_picks_the_last_step_and_keeps_diverged_cells():
    by_setting = {"k5": {"maml": {"mse_step0": 3.0, "mse_step10": 0.4}, "scratch": {"mse_step10": None}}}
    assert headline(by_setting, "mse", 10) == {"k5": {"steps": 10, "maml": 0.4, "scratch": "diverged"}}


def test_compare_sorts_scores_by_their_ci():
    ref = {"a": {"mse_step1": 1.0, "ci95_step1": 0.1, "mse_step2": 1.0, "ci95_step2": 0.1, "mse_step3": 1.0,
                 "ci95_step3": 0.1, "mse_step4": 2.0, "ci95_step4": 0.1}}  # fmt: skip
    new = {"a": {"mse_step1": 1.0, "ci95_step1": 0.1, "mse_step2": 1.05, "ci95_step2": 0.1, "mse_step3": 1.5,
                 "ci95_step3": 0.1, "mse_step4": None, "ci95_step4": None}}  # fmt: skip
    verdict = compare({s.key: s for s in scores(ref, "f")}, {s.key: s for s in scores(new, "f")})
    assert (verdict.identical, verdict.within) == (1, 1)
    assert [a.key for a, _ in verdict.moved] == ["f/a/mse_step3", "f/a/mse_step4"]


def test_verify_the_committed_scores_against_themselves():
    proc = subprocess.run([sys.executable, "-m", "reml", "verify", "--rev", "HEAD"], cwd=REPO, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    committed = read_scores("reports", "HEAD")
    assert f"{len(committed)} scores compared (HEAD against HEAD): {len(committed)} identical" in proc.stdout
    assert len(committed) > 300 and json.dumps(sorted(committed))  # every family is there
