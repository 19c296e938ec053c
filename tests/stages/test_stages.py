"""Stage scripts: clear errors before compute, nothing half-written, identical results for identical seeds."""

import pytest
import torch
import yaml

from reml.core.io import ArtifactError
from reml.core.nets import MLP
from reml.core.seeding import generator
from reml.families.sinusoid.baselines import train_joint_regression
from reml.families.sinusoid.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from reml.families.sinusoid.evaluate import evaluate_method, metrics
from reml.families.sinusoid.tasks import SinusoidDistribution
from tests.helpers import run_stage


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
        "--scores-out", str(tmp_path / "m.json"), "--headline-dir", str(tmp_path / "h"),
        "--curves-out", str(tmp_path / "c.csv"),
        "--examples-out", str(tmp_path / "e.csv"), "--methods-out", str(tmp_path / "x.json"),
        "--unrelated-dir", str(tmp_path / "u"), "--unrelated-out", str(tmp_path / "u.json"),
        "--long-curves-out", str(tmp_path / "l.csv"), "--paired-out", str(tmp_path / "p.json"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert "absent.safetensors: not found; it is written by `generate_tasks`" in proc.stderr
    assert not (tmp_path / "m.json").exists()


def train_tiny(seed):
    return train_joint_regression(
        MLP((1, 8, 1)), SinusoidDistribution(), "x", iterations=30, tasks_per_batch=4, points_per_task=5,
        lr=1e-3, generator=generator(seed, "pretrained/train"), log_every=10, device=torch.device("cpu"),
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
    stats = ("mse", "ci95", "median", "diverged", "sd_seeds")
    assert set(first["pretrained"]["k5"]) == {f"{m}_step{s}" for m in stats for s in (0, 1, 5, 10)} | {"n_runs"}
    with pytest.raises(ArtifactError, match="has step sizes for K in \\[5, 10\\], not K = 20"):
        loaded.step_size(20)


def test_malformed_checkpoint_is_rejected_with_its_path(tmp_path):
    params, _ = train_tiny(0)
    save_checkpoint(tmp_path / "c.safetensors", Checkpoint("scratch", (1, 9, 1), "x", {5: 0.1}, params))
    unfit = r"c\.safetensors: not a valid checkpoint .*parameters do not fit MLP\(sizes=\(1, 9, 1\)\)"
    with pytest.raises(ArtifactError, match=unfit):
        load_checkpoint(tmp_path / "c.safetensors", "train_scratch")
    (tmp_path / "d.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ArtifactError, match=r"d\.safetensors: not a valid checkpoint.*dvc repro train_scratch"):
        load_checkpoint(tmp_path / "d.safetensors", "train_scratch")


def test_train_reml_rejects_an_unknown_agent_before_training(tmp_path):
    proc = run_stage("train_reml.py", "--agent", "reml_a2c", "--encoding", "support", "--variant", "thesis", "--seed",
                     "0", "--val-tasks",
                     str(tmp_path / "val.safetensors"), "--out", str(tmp_path / "run"), "--log-out",
                     str(tmp_path / "log.csv"))  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "train_reml.agents: --agent 'reml_a2c' is not one of ['reml_maskable']" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_matrix_item_outside_the_params_is_named(tmp_path):
    proc = run_stage("train_maml_trpo.py", "--method", "maml_trpo", "--family", "hopper", "--replicate", "0",
                     "--out", str(tmp_path / "p.safetensors"), "--log-out", str(tmp_path / "log.csv"))  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "rl.run: --family 'hopper' is not one of ['navigation2d', 'cheetah_dir', 'cheetah_vel']" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_reml_names_a_missing_validation_set(tmp_path):
    proc = run_stage("train_reml.py", "--agent", "reml_maskable", "--encoding", "support", "--variant", "thesis",
                     "--seed", "0", "--val-tasks",
                     str(tmp_path / "val.safetensors"), "--out", str(tmp_path / "run"), "--log-out",
                     str(tmp_path / "log.csv"))  # fmt: skip
    assert proc.returncode == 1 and "val.safetensors: not found; it is written by `generate_tasks`" in proc.stderr
    assert list(tmp_path.iterdir()) == []
