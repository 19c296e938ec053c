"""Profiles: overlays on params.yaml, switched in place so `dvc params diff` shows what changed."""

import shutil

import pytest
import yaml

from reml.core.config import PROFILES, ConfigError
from reml.core.profiles import PROFILE_DIR, apply_profile, leaves, load_overlay
from reml.families import params
from tests.helpers import REPO


def overlay_keys(name):
    return {k for k, _ in leaves(load_overlay(name, REPO / PROFILE_DIR))}


def test_quick_names_every_key_any_profile_changes():
    for name in PROFILES:
        assert overlay_keys(name) <= overlay_keys("quick"), name


def test_params_file_matches_its_declared_profile(params_copy):
    """The committed params.yaml must be exactly what its profile overlay produces."""
    declared = yaml.safe_load(params_copy.read_text())["profile"]
    before = params_copy.read_text()
    assert apply_profile(declared, params_copy, REPO / PROFILE_DIR) == []
    assert params_copy.read_text() == before


def test_switching_to_paper_and_back_restores_the_file_exactly(params_copy):
    original = params_copy.read_text()
    changed = apply_profile("paper", params_copy, REPO / PROFILE_DIR)
    assert "train_pretrained.iterations" in changed and "reports_dir" in changed
    paper = params.load(params_copy)
    assert paper.pipeline.profile == "paper" and paper.pipeline.reports_dir == "reports/paper"
    assert paper.sinusoid.train_pretrained.iterations == 70000
    assert "# which profile" in params_copy.read_text().lower()  # comments survive
    apply_profile("quick", params_copy, REPO / PROFILE_DIR)
    if yaml.safe_load(original)["profile"] == "quick":
        assert params_copy.read_text() == original


def test_unknown_profile_and_unknown_key(params_copy, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown profile 'fast'; allowed: \['quick', 'paper', 'tiny'\]"):
        apply_profile("fast", params_copy, REPO / PROFILE_DIR)
    shutil.copytree(REPO / PROFILE_DIR, tmp_path / "profiles")
    (tmp_path / "profiles" / "tiny.yaml").write_text("train_pretrained:\n  iters: 3\n")
    with pytest.raises(ConfigError, match=r"train_pretrained\.iters: no such key"):
        apply_profile("tiny", params_copy, tmp_path / "profiles")


def test_an_invalid_result_is_never_written(params_copy, tmp_path):
    shutil.copytree(REPO / PROFILE_DIR, tmp_path / "profiles")
    (tmp_path / "profiles" / "tiny.yaml").write_text("train_pretrained:\n  lr: -1.0\n")
    before = params_copy.read_text()
    with pytest.raises(ConfigError, match=r"train_pretrained\.lr: must be > 0, got -1\.0"):
        apply_profile("tiny", params_copy, tmp_path / "profiles", validate=params.parse)
    assert params_copy.read_text() == before
