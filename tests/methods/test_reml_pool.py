"""The REML layer pool: one index space over input, hidden and output layers, immutable, saved as safetensors."""

import pytest
import torch

from reml.core.io import ArtifactError
from reml.core.seeding import generator
from reml.methods.reml.pool import linear_pool, load_pool, pool_from_tensors, pool_tensors, save_pool, stacked_pool


def make_pool():
    return linear_pool(1, 8, 1, n_input=2, n_hidden=5, n_output=2, generator=generator(0, "pool-test"))


def same(a, b):
    return all(torch.equal(t, b.parts[kind][name]) for kind, parts in a.parts.items() for name, t in parts.items())


def test_pool_network_and_file_round_trip(tmp_path):
    pool = make_pool()
    params = pool.network([1, 3, 2, 6, 8])
    assert sorted(params) == sorted(f"{s}.{n}" for s in range(5) for n in ("weight", "bias"))  # five layers
    assert torch.equal(params["1.weight"], pool.parts["hidden"]["weight"][1])  # index 3: the second hidden layer
    assert params["0.weight"].shape == (8, 1) and params["4.weight"].shape == (1, 8)
    with pytest.raises(ValueError, match="repeat a hidden layer"):
        pool.network([0, 3, 3, 7])
    with pytest.raises(ValueError, match="have kinds"):
        pool.network([3, 0, 7])
    save_pool(tmp_path / "pool.safetensors", pool, {"config": {"width": 8}})
    loaded, meta = load_pool(tmp_path / "pool.safetensors", "train_reml")
    assert same(pool, loaded) and meta == {"config": {"width": 8}}
    assert torch.equal(loaded.chosen, pool.chosen) and torch.equal(loaded.trained, pool.trained)
    with pytest.raises(ArtifactError, match=r"absent\.safetensors: not found.*train_reml"):
        load_pool(tmp_path / "absent.safetensors", "train_reml")


def test_write_back_blends_the_chosen_layers_and_returns_a_new_pool():
    pool = make_pool()
    layers = [0, 3, 5, 8]
    trained = {k: v + 1.0 for k, v in pool.network(layers).items()}
    half = pool.write_back(layers, trained, blend=0.5)
    assert same(pool, make_pool())  # the pool it came from is unchanged
    torch.testing.assert_close(half.layer(3)["weight"], pool.layer(3)["weight"] + 0.5)
    assert torch.equal(half.layer(4)["weight"], pool.layer(4)["weight"])  # not chosen
    assert half.trained.tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 1] and half.chosen.sum() == 0
    with pytest.raises(ValueError, match="blend must be in"):
        pool.write_back(layers, trained, blend=1.5)


def test_tensor_names_are_the_file_formats_of_mlp_layers_and_of_other_blocks():
    pool = make_pool()
    tensors = pool_tensors(pool, "pool.")
    assert sorted(tensors) == sorted(["pool.chosen", "pool.trained"] + [f"pool.{k}_{p}" for k in ("input", "hidden",
                                      "output") for p in "wb"])  # fmt: skip
    assert same(pool_from_tensors(tensors | {"other": torch.zeros(1)}, "pool."), pool)
    blocks = stacked_pool({"input": [{"conv.weight": torch.ones(2, 1)}], "hidden": [{"conv.weight": torch.zeros(2, 2)}],
                           "output": [{"weight": torch.ones(3, 2), "bias": torch.zeros(3)}]})  # fmt: skip
    assert sorted(pool_tensors(blocks)) == ["chosen", "hidden/conv.weight", "input/conv.weight", "output/bias",
                                            "output/weight", "trained"]  # fmt: skip
    assert same(pool_from_tensors(pool_tensors(blocks)), blocks)
    with pytest.raises(ValueError, match="needs layers of every kind"):
        pool_from_tensors({k: v for k, v in pool_tensors(blocks).items() if not k.startswith("hidden")})
