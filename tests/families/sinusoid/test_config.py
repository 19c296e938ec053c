"""params.yaml validation of the sinusoid sections: every bad value is reported by key, with what is
allowed, before any compute."""

import math

import pytest
import yaml

from reml.core.config import ConfigError
from reml.families.sinusoid.config import load


def write_modified(path, edit):
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    return path


def test_committed_params_are_valid():
    params = load()
    assert params.model.hidden == (40, 40)
    assert max(params.adaptation.shots) <= params.generate_tasks.k_max


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(bogus=1), r"^bogus: unknown key; allowed keys: profile, reports_dir, compute, sinusoid"),
        (lambda d: d["train_pretrained"].update(lrr=0.1), r"^train_pretrained\.lrr: unknown key; allowed keys: seed,"),
        (lambda d: d["adaptation"].update(shots=[0, 5]), r"^adaptation\.shots: every K must be >= 1, got \[0, 5\]"),
        (
            lambda d: d["sinusoid"].update(amplitude=[5.0, 0.1]),
            r"^sinusoid\.amplitude: min 5\.0 > max 0\.1; give \[min, max\] with min <= max",
        ),
        (lambda d: d["train_pretrained"].update(lr=-0.1), r"^train_pretrained\.lr: must be > 0, got -0\.1"),
        (
            lambda d: d["adaptation"].update(lr_grid=[0.01, -1]),
            r"^adaptation\.lr_grid: step sizes must be finite and > 0",
        ),
        (
            lambda d: d["train_oracle"].update(iterations="many"),
            r"^train_oracle\.iterations: expected an integer, got 'many'",
        ),
        (
            lambda d: d["adaptation"].update(optimizer="lbfgs"),
            r"^adaptation\.optimizer: got 'lbfgs'; allowed: \['sgd', 'adam'\]",
        ),
        (lambda d: d["generate_tasks"].pop("n_query"), r"^generate_tasks\.n_query: missing"),
        (
            lambda d: d["generate_tasks"].update(k_max=10),
            r"^adaptation\.shots: K = 20 exceeds generate_tasks\.k_max = 10",
        ),
        (lambda d: d["evaluate_fewshot"].update(methods=["maml2"]), r"^evaluate_fewshot\.methods: unknown \['maml2'\]"),
        (
            lambda d: d["make_figures"].update(example_steps=[0, 11]),
            r"^make_figures\.example_steps: \[11\] exceed adaptation\.steps = 10",
        ),
        (
            lambda d: d["train_reml"].update(agents=["reml_ppo", "reml_a2c"]),
            r"^train_reml\.agents: unknown \['reml_a2c'\]; allowed: \['reml_ppo', 'reml_maskable', 'reml_lstm'\]",
        ),
        (
            lambda d: d["evaluate_fewshot"]["methods"].append("reml_ppo_oracle"),
            r"^evaluate_fewshot\.methods: \['reml_ppo_oracle'\] are not trained",
        ),
        (lambda d: d["reml"].update(depth=30), r"^reml\.depth: 30 exceeds pool\.n_hidden = 20"),
        (
            lambda d: d["train_reml"].update(timesteps=20000),
            r"^train_maml\.maml_matched\.iterations: trains on 3000 tasks but one REML run sees 4000",
        ),
        (
            lambda d: d["train_pretrained_matched"].update(tasks_per_batch=2),
            r"^train_pretrained_matched\.iterations: trains on 6000 tasks but one REML run sees 3000",
        ),
        (lambda d: d.update(replicates=[0, 0]), r"^replicates: has duplicates: \[0, 0\]"),
        (lambda d: d.update(replicates=[]), r"^replicates: needs at least one replicate"),
        (
            lambda d: d["evaluate_fewshot"].update(reml_reference="reml_best"),
            r"^evaluate_fewshot\.reml_reference: must be one of \['reml_ppo'",
        ),
        (
            lambda d: d["evaluate_fewshot"].update(reml_reference="reml_ppo"),
            r"^evaluate_fewshot\.reml_reference: 'reml_ppo' must be in evaluate_fewshot\.methods",
        ),
        (
            lambda d: d["reml"].update(reward="sparse"),
            r"^reml\.reward: got 'sparse'; allowed: \['terminal', 'dense', 'relative'\]",
        ),
        (
            lambda d: d["reml_variants"]["meta_gradient"].update(meta_lr=math.nan),
            r"^reml_variants\.meta_gradient\.meta_lr: must be a finite number, got nan",
        ),
        (
            lambda d: d["reml_variants"]["relative"].update(rewrd="relative"),
            r"^reml_variants\.relative\.rewrd: unknown key",
        ),
        (
            lambda d: d["reml_variants"].update(bounce={"blend": 0.5}),
            r"^reml_variants: unknown \['bounce'\]; allowed: \['meta_gradient', 'relative', 'sgd_inner', "
            r"'slot_pools', 'sgd_slot_pools', 'candidate_scores'\]",
        ),
        (
            lambda d: d["reml_variants"].pop("relative"),
            r"^train_reml\.variants: \['relative'\] have no overrides in reml_variants",
        ),
        (
            lambda d: d["train_reml"]["ppo"].update(batch_size=5000),
            r"^train_reml\.ppo\.batch_size: 5000 exceeds n_steps",
        ),
        (
            lambda d: d["evaluate_fewshot"]["long_finetune"].update(methods=["reptile2"]),
            r"^evaluate_fewshot\.long_finetune\.methods: \['reptile2'\] are not in evaluate_fewshot\.methods",
        ),
        (
            lambda d: d["evaluate_fewshot"].update(unrelated_k=7),
            r"^evaluate_fewshot\.unrelated_k: K = 7 must be one of adaptation\.shots \[5, 10, 20\]",
        ),
        (lambda d: d.update(profile="fast"), r"^profile: got 'fast'; allowed: \['quick', 'paper', 'tiny'\]"),
    ],
)
def test_bad_values_are_named(params_copy, edit, message):
    write_modified(params_copy, edit)
    with pytest.raises(ConfigError, match=message):
        load(params_copy)


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load(tmp_path / "nope.yaml")
