"""The report's status table (reml/core/report.py): every stage of the pipeline belongs to exactly one
row, and a row's wall time is the sum of its stages' recorded times, marked where some were not timed."""

import json

import yaml

from reml.core.report import SHARED, StatusRow, status_table
from reml.families import params as all_params
from reml.families.classification import report as classification
from reml.families.rl import report as rl
from reml.families.sinusoid import report as sinusoid
from tests.helpers import REPO


def _stages() -> list[str]:
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        return [s.addressing for s in repo.index.stages]


def test_every_stage_but_the_report_belongs_to_exactly_one_status_row():
    """A stage no family claims would be missing from every wall time; one two families claim, counted
    twice. The rows named are those the report prints (the committed quick profile's methods)."""
    params = all_params.load(REPO / "params.yaml")
    label = "classification (glyphs)"
    owners = {}
    for name in _stages():
        claims = [o for o in (sinusoid.stage_owner(name), classification.stage_owner(name, label),
                              rl.stage_owner(name, params.rl.rl.reml.agent)) if o is not None]  # fmt: skip
        assert len(claims) == (0 if name == "make_report" else 1), (name, claims)
        if claims:
            owners[name] = claims[0]
    scores = json.loads((REPO / "reports/scores/sinusoid.json").read_text())
    mixed = json.loads((REPO / "reports/scores/sinusoid_mixed.json").read_text())
    rows, _ = sinusoid.status_rows(params.sinusoid, scores, mixed)
    keys = {(r.family, r.method) for r in rows}
    sinusoid_owners = {o for o in owners.values() if o[0].startswith("sinusoid")}
    assert sinusoid_owners <= keys, sinusoid_owners - keys
    assert owners["train_reml@reml_maskable-support-sgd_inner-2"] == ("sinusoid", "reml_maskable_sgd_inner")
    assert owners["train_meta_once@fomaml"] == ("sinusoid", "fomaml")
    assert owners["train_mixed@reml_maskable_sgd_inner-0"] == ("sinusoid mixture (RQ4)", "reml_maskable_sgd_inner")
    assert owners["train_classifier_replicated@maml_matched-5-1-0"] == (label, "maml_matched")
    assert owners["train_reml_rl@cheetah_dir-1"] == ("cheetah_dir", "reml_maskable")
    assert owners["train_maml_trpo@maml_trpo_matched-navigation2d-0"] == ("navigation2d", "maml_trpo_matched")
    assert owners["evaluate_rl"] == (rl.ALL_FAMILIES, SHARED)
    maml = next(r for r in rows if r.method == "maml")
    assert maml.runs == 3 and maml.published == "0.67 / 0.35"  # Finn's K = 5 after 1 and 10 steps


def test_wall_time_is_the_sum_of_the_row_s_stages_and_says_what_was_not_timed():
    rows = [StatusRow("f", "a", 3, "10 tasks", "1.0", "2.0"), StatusRow("f", "b", 1, "5 tasks"),
            StatusRow("f", "c", 0, "– (not run)"), StatusRow("f", SHARED, 1, "")]  # fmt: skip
    owner = {"train@a-0": ("f", "a"), "train@a-1": ("f", "a"), "train@b-0": ("f", "b"),
             "evaluate": ("f", SHARED)}.get  # fmt: skip
    entry = {"jobs": 2, "machine": "CPU X, 2 cores", "finished": "2026-12-03 10:00 UTC", "outs": {}}
    times = {"train@a-0": {**entry, "seconds": 3000.0}, "train@a-1": {**entry, "seconds": 1800.0},
             "evaluate": {**entry, "seconds": 40.0}}  # fmt: skip
    table = status_table(rows, {"f": "loss"}, times, owner, ["train@a-0", "train@a-1", "train@b-0", "evaluate"])
    lines = {line.split(" | ")[1]: line for line in table.splitlines() if line.startswith("| f |")}
    assert "| 80 min |" in lines["a"]  # 3000 + 1800 s
    assert "| not timed |" in lines["b"] and "| not run |" in lines["c"] and "| 40 s |" in lines[f"*{SHARED}*"]
    assert "3 of 4 stages timed" in table and "CPU X, 2 cores, 2 stage(s) at a time" in table
    partial = status_table(rows[:1], {}, {"train@a-0": times["train@a-0"]}, owner, ["train@a-0", "train@a-1"])
    assert "50 min (1 of 2 stages)" in partial
    assert "none of the 1 stages were timed" in status_table(rows[:1], {}, {}, owner, ["train@a-0"])
    ablation = StatusRow("f", "a_random", 3, "10 tasks", untrained="in the REML runs")
    assert "| in the REML runs |" in status_table([ablation], {}, {}, owner, ["train@a-0"])


def test_the_committed_stage_times_files_are_valid_and_every_profile_has_one():
    from reml.core import stagetimes

    for profile in ("quick", "paper"):
        overlay = yaml.safe_load((REPO / "profiles" / f"{profile}.yaml").read_text())
        path = REPO / stagetimes.path_for(overlay["reports_dir"])
        assert path.is_file(), f"{path}: make_report depends on it"
        stagetimes.load(path)
