"""Stage scripts: clear errors before compute, nothing half-written, identical results for identical seeds."""

import pytest
import torch
import yaml

from baselines.joint import train_joint_regression
from conftest import run_stage
from reml.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from reml.io import ArtifactError
from reml.nets import MLP
from reml.results import evaluate_method, metrics
from reml.seeding import generator
from reml.tasks import SinusoidDistribution


def test_bad_param_stops_the_stage_before_writing(params_copy, tmp_path):
    data = yaml.safe_load(params_copy.read_text())
    data["generate_tasks"]["n_test"] = 0
    params_copy.write_text(yaml.safe_dump(data))
    out = tmp_path / "test.safetensors"
    proc = run_stage("generate_tasks.py", "--params", str(params_copy), "--test-out", str(out), "--val-out",
                     str(tmp_path / "val.safetensors"), "--unrelated-dir", str(tmp_path / "unrelated"))  # fmt: skip
    assert proc.returncode == 1
    assert "generate_tasks.n_test: must be >= 1, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == [params_copy]  # no output, no temporary file left behind


def test_missing_artifact_names_the_file_and_the_stage(tmp_path):
    proc = run_stage(
        "evaluate_fewshot.py", "--test-tasks", str(tmp_path / "absent.safetensors"), "--models-dir", str(tmp_path),
        "--metrics-out", str(tmp_path / "m.json"), "--curves-out", str(tmp_path / "c.csv"),
        "--examples-out", str(tmp_path / "e.csv"), "--methods-out", str(tmp_path / "x.json"),
        "--unrelated-dir", str(tmp_path / "u"), "--unrelated-out", str(tmp_path / "u.json"),
        "--long-curves-out", str(tmp_path / "l.csv"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert "absent.safetensors: not found; it is written by `generate_tasks`" in proc.stderr
    assert not (tmp_path / "m.json").exists()


def train_tiny(seed):
    return train_joint_regression(
        MLP((1, 8, 1)), SinusoidDistribution(), "x", iterations=30, tasks_per_batch=4, points_per_task=5,
        lr=1e-3, generator=generator(seed, "pretrained/train"), log_every=10,
    )  # fmt: skip


def test_same_seed_same_results():
    (params_a, log_a), (params_b, log_b) = train_tiny(0), train_tiny(0)
    assert all(torch.equal(params_a[k], params_b[k]) for k in params_a)
    assert log_a == log_b
    params_c, _ = train_tiny(1)
    assert not torch.equal(params_a["0.weight"], params_c["0.weight"])


def test_checkpoint_round_trip_is_byte_identical_and_scores_identically(tmp_path):
    params, _ = train_tiny(0)
    ckpt = Checkpoint("pretrained", (1, 8, 1), "x", {5: 0.01, 10: 0.02}, params, config={"seed": 0})
    save_checkpoint(tmp_path / "a.safetensors", ckpt)
    save_checkpoint(tmp_path / "b.safetensors", ckpt)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    loaded = load_checkpoint(tmp_path / "a.safetensors", "train_pretrained")
    assert loaded.step_sizes == {5: 0.01, 10: 0.02} and loaded.config == {"seed": 0}
    tasks = SinusoidDistribution().sample(8, 10, 6, generator(0, "sinusoid/test"))
    first = metrics([evaluate_method(loaded, tasks, (5, 10), "sgd", 10)])
    second = metrics([evaluate_method(load_checkpoint(tmp_path / "b.safetensors", "x"), tasks, (5, 10), "sgd", 10)])
    assert first == second
    assert set(first["pretrained"]["k5"]) == {f"{m}_step{s}" for m in ("mse", "ci95") for s in (0, 1, 10)}
    with pytest.raises(ArtifactError, match="has step sizes for K in \\[5, 10\\], not K = 20"):
        loaded.step_size(20)


def test_malformed_checkpoint_is_rejected_with_its_path(tmp_path):
    params, _ = train_tiny(0)
    save_checkpoint(tmp_path / "c.safetensors", Checkpoint("scratch", (1, 9, 1), "x", {5: 0.1}, params))
    with pytest.raises(ArtifactError, match=r"c\.safetensors: parameters do not fit MLP\(1, 9, 1\)"):
        load_checkpoint(tmp_path / "c.safetensors", "train_scratch")
    (tmp_path / "d.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ArtifactError, match=r"d\.safetensors: not a valid checkpoint.*dvc repro train_scratch"):
        load_checkpoint(tmp_path / "d.safetensors", "train_scratch")


def test_train_reml_rejects_an_unknown_agent_before_training(tmp_path):
    proc = run_stage("train_reml.py", "--agent", "reml_a2c", "--encoding", "support", "--seed", "0", "--val-tasks",
                     str(tmp_path / "val.safetensors"), "--out", str(tmp_path / "run"), "--log-out",
                     str(tmp_path / "log.csv"))  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        "argument --agent: invalid choice: 'reml_a2c' (choose from 'reml_ppo', 'reml_maskable', 'reml_lstm')"
        in proc.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_train_reml_names_a_missing_validation_set(tmp_path):
    proc = run_stage("train_reml.py", "--agent", "reml_ppo", "--encoding", "oracle", "--seed", "0", "--val-tasks",
                     str(tmp_path / "val.safetensors"), "--out", str(tmp_path / "run"), "--log-out",
                     str(tmp_path / "log.csv"))  # fmt: skip
    assert proc.returncode == 1 and "val.safetensors: not found; it is written by `generate_tasks`" in proc.stderr
    assert list(tmp_path.iterdir()) == []
