"""RL policy checkpoints: round trip and errors."""

import pytest
import torch

from reml.core.seeding import generator
from reml.families.rl.policy import GaussianPolicy


def test_policy_checkpoint_round_trip_and_errors(tmp_path):
    from reml.core.io import ArtifactError
    from reml.families.rl.checkpoint import PolicyCheckpoint, load_policy, save_policy

    policy = GaussianPolicy(2, 2)
    ckpt = PolicyCheckpoint("maml_trpo", "navigation2d", policy, policy.init(generator(0, "t")), False, {"a": 1})
    save_policy(tmp_path / "p.safetensors", ckpt)
    back = load_policy(tmp_path / "p.safetensors", "stage", "maml_trpo", "navigation2d", device=torch.device("cpu"))
    assert back.policy == policy and all(torch.equal(back.params[k], v) for k, v in ckpt.params.items())
    with pytest.raises(ArtifactError, match="holds maml_trpo for navigation2d, expected oracle"):
        load_policy(tmp_path / "p.safetensors", "stage", "oracle", "navigation2d", device=torch.device("cpu"))
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="not a valid policy"):
        load_policy(tmp_path / "bad.safetensors", "stage", "maml_trpo", "navigation2d", device=torch.device("cpu"))
