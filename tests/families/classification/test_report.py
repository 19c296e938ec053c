"""The classification section of the report."""

from reml.families.classification.report import best_methods, composition_lines


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
