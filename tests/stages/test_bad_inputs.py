"""Every bad input the issue tracker found (issue 25), one by one, through the stage that reads it first:
exit 1 with one line naming the key or the file, no traceback, nothing written."""

import math

import pytest
import torch
import yaml
from PIL import Image

from reml.core.io import ArtifactError, save_tensors
from reml.families.classification.data import _read_image
from reml.families.sinusoid.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from tests.helpers import run_stage


def edited(params_copy, dotted, value):
    data = yaml.safe_load(params_copy.read_text())
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    params_copy.write_text(yaml.safe_dump(data))
    return str(params_copy)


def outs(tmp_path, *names):
    return [x for name in names for x in (f"--{name.replace('_', '-')}", str(tmp_path / "out" / name))]


SINUSOID_TASKS = ["--test-out", "--val-out", "--unrelated-dir"]
# (stage script, its arguments but --params, key, bad value, what the one line must say)
CASES = [
    ("train_pretrained_classifier.py", ["data_dir", "out", "log_out"], "classification.pretrained.lr", math.inf,
     "classification.pretrained.lr: must be a finite number, got inf"),
    ("train_maml_trpo.py", ["out", "log_out"], "rl.maml_trpo.inner_lr", math.inf,
     "rl.maml_trpo.inner_lr: must be a finite number, got inf"),
    ("evaluate_rl.py", ["models_dir", "scores_out", "headline_dir", "curves_out", "methods_out"],
     "rl.evaluate.step_sizes", [0.1, math.nan], "rl.evaluate.step_sizes[1]: must be a finite number, got nan"),
    ("generate_tasks.py", ["test_out", "val_out", "unrelated_dir"], "sinusoid.amplitude", [0.1, math.inf],
     "sinusoid.amplitude[1]: must be a finite number, got inf"),
    ("evaluate_classification.py",
     ["data_dir", "models_dir", "scores_out", "headline_dir", "curves_out", "methods_out"],
     "classification.evaluate.lr_grid", [0.1, math.nan],
     "classification.evaluate.lr_grid[1]: must be a finite number, got nan"),
    ("train_reml.py", ["val_tasks", "out", "log_out"], "train_reml.ppo.ent_coef", math.inf,
     "train_reml.ppo.ent_coef: must be a finite number, got inf"),
    ("generate_tasks.py", ["test_out", "val_out", "unrelated_dir"], "reports_dir", "../outside",
     "reports_dir: must be a relative path inside the repository"),
    ("generate_images.py", ["out_dir"], "classification.glyphs.split", [0.7, 0.1, 0.5],
     "classification.glyphs.split: shares must sum to 1, got [0.7, 0.1, 0.5]"),
    ("train_reml.py", ["val_tasks", "out", "log_out"], "train_reml.agents", ["foo"],
     "train_reml.agents: unknown ['foo']; allowed: ['reml_ppo', 'reml_maskable', 'reml_lstm']"),
    ("train_maml_trpo.py", ["out", "log_out"], "rl.run", ["navigation2d", "hopper"],
     "rl.run: ['hopper'] have no budget under rl.families"),
    ("train_rl_ppo.py", ["out", "log_out"], "rl.families.hopper",
     {"iterations": 1, "meta_batch": 1, "max_kl": 0.01, "rollouts": 1, "ppo_timesteps": 1, "reml_episodes": 30,
      "return_scale": 1.0, "test_rollouts": 1, "frame_skip": 1},
     "rl.families: unknown ['hopper']; allowed: ['navigation2d', 'cheetah_vel', 'cheetah_dir', 'ant_vel', 'ant_dir']"),
    ("generate_images.py", ["out_dir"], "classification.glyphs.scripts", ["GREEK", "KLINGON"],
     "classification.glyphs.scripts: ['KLINGON'] have no letters in matplotlib's fonts; scripts with letters: "),
    ("train_reml.py", ["val_tasks", "out", "log_out"], "compute.device", "gpu",
     "compute.device: got 'gpu'; allowed: ['cpu', 'cuda', 'auto']"),
    ("train_maml_trpo.py", ["out", "log_out"], "compute.threads", 0,
     "compute.threads: must be an integer in [1, 1024], got 0"),
]  # fmt: skip
if not torch.cuda.is_available():  # where there is a GPU, cuda is a valid choice (tests/core/test_compute.py)
    CASES.append(("evaluate_rl.py", ["models_dir", "scores_out", "headline_dir", "curves_out", "methods_out"],
                  "compute.device", "cuda", "compute.device: cuda was asked for but"))  # fmt: skip
MATRIX_ITEMS = {
    "train_maml_trpo.py": ["--method", "maml_trpo", "--family", "navigation2d", "--replicate", "0"],
    "train_rl_ppo.py": ["--method", "oracle", "--family", "navigation2d", "--replicate", "0"],
    "train_pretrained_classifier.py": ["--method", "pretrained", "--replicate", "0"],
    "train_reml.py": ["--agent", "reml_maskable", "--encoding", "support", "--variant", "thesis", "--seed", "0"],
}


@pytest.mark.parametrize(("script", "paths", "key", "value", "message"), CASES, ids=[f"{c[2]}={c[3]}" for c in CASES])
def test_bad_param_is_named_before_any_compute(params_copy, tmp_path, script, paths, key, value, message):
    params = edited(params_copy, key, value)
    proc = run_stage(script, "--params", params, *MATRIX_ITEMS.get(script, []), *outs(tmp_path, *paths))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()  # nothing written, not even a temporary file


def test_a_decompression_bomb_names_the_image(tmp_path, monkeypatch):
    bomb = tmp_path / "alphabet" / "character" / "0001.png"
    bomb.parent.mkdir(parents=True)
    Image.new("L", (64, 64)).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64 // 2 - 1)  # 64 x 64 is now more than twice the limit
    with pytest.raises(ArtifactError, match=r"0001\.png: not a readable image \(DecompressionBombError"):
        _read_image(bomb, 28, "L")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 64 * 64 - 1)  # over the limit: PIL only warns
    with pytest.raises(ArtifactError, match=r"0001\.png: not a readable image \(DecompressionBombWarning"):
        _read_image(bomb, 28, "L")


def test_another_methods_checkpoint_is_refused(tmp_path):
    params = {"0.weight": torch.zeros(4, 3), "0.bias": torch.zeros(4), "1.weight": torch.zeros(1, 4),
              "1.bias": torch.zeros(1)}  # fmt: skip
    path = tmp_path / "maml.safetensors"
    save_checkpoint(path, Checkpoint("oracle", (3, 4, 1), "x+task_params", {5: 0.01}, params))
    with pytest.raises(ArtifactError, match=r"maml\.safetensors: holds the oracle checkpoint, expected maml's; "
                                            r"rerun `dvc repro train_maml@maml`"):  # fmt: skip
        load_checkpoint(path, "train_maml@maml", "maml")


def test_non_finite_weights_are_never_written_nor_read(tmp_path):
    path = tmp_path / "w.safetensors"
    with pytest.raises(ArtifactError, match=r"w\.safetensors: not written, a hold inf or NaN \(training diverged"):
        save_tensors(path, {"a": torch.tensor([1.0, math.nan]), "b": torch.ones(2)}, {})
    assert list(tmp_path.iterdir()) == []
    from safetensors.torch import save_file

    save_file({"a": torch.tensor([math.inf])}, path, metadata={"reml": "{}"})  # written by something else
    from reml.core.tasks import load_taskset

    with pytest.raises(ArtifactError, match=r"w\.safetensors: not a valid task set \(a hold inf or NaN\); rerun "):
        load_taskset(path)
