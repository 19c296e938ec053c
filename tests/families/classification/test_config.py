"""The classification section of params.yaml: each bad value named by its key."""

import pytest

from reml.families.classification import config
from tests.families.classification.helpers import edit_params


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(dataset="cifar"), r"classification\.dataset: got 'cifar'; allowed: \['glyphs', 'omniglot'"),
        (lambda c: c.update(dataset="omniglot"), r"classification\.data_dir: dataset 'omniglot' is read from a local"),
        (lambda c: c.update(shots=[1, 18]), r"classification\.shots: K \+ n_query = 23 exceeds glyphs\.instances = 20"),
        (lambda c: c["reml"].update(agents=["reml_a2c"]), r"classification\.reml\.agents: unknown \['reml_a2c'\]"),
        (lambda c: c["maml"].update(inner_lr=0), r"classification\.maml\.inner_lr: must be > 0, got 0"),
        (lambda c: c.update(ways=[1]), r"classification\.ways: N-way needs N >= 2"),
        (lambda c: c.update(model="mlp"), r"classification\.model: REML composes conv blocks: model must be 'conv'"),
        (lambda c: c["reml"]["pool"].update(n_hidden=2), r"classification\.reml\.pool\.n_hidden: .* need >= 3, got 2"),
        (
            lambda c: c.update(replicates=[1, 2]),
            r"classification\.replicates: must be 0, 1, \.\.\., R-1 .* got \[1, 2\]",
        ),
        (
            lambda c: c["reml"].update(reference="reml_ppo"),
            r"classification\.reml\.reference: must be one of reml\.agents",
        ),
        (lambda c: c["reml"].update(timesteps=2001), r"classification\.reml\.timesteps: must be a multiple of 5"),
    ],
)
def test_bad_classification_params_are_named(params_copy, edit, message):
    path = edit_params(params_copy, edit)
    with pytest.raises(ValueError, match=message):
        config.load(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["maml_matched"].update(iterations=101),
         r"classification\.maml_matched\.iterations: iterations x meta_batch = 101 x 4 = 404 episodes, but REML "
         r"trains on reml\.timesteps / 5 = 400"),
        (lambda c: c["reml"].update(timesteps=1000),
         r"classification\.maml_matched\.iterations: .* = 400 episodes, but REML trains on .* = 200"),
        (lambda c: c["pretrained_matched"].update(iterations=1000),
         r"classification\.pretrained_matched\.iterations: must be one Adam step per REML training episode, "
         r"reml\.timesteps / 5 = 400, got 1000"),
    ],
)  # fmt: skip
def test_the_matched_budgets_must_match_reml(params_copy, edit, message):
    with pytest.raises(ValueError, match=message):
        config.load(edit_params(params_copy, edit))


def test_without_reml_the_matched_budgets_are_not_checked(params_copy):
    def edit(c):
        c["reml"]["agents"] = []
        c["maml_matched"]["iterations"] = 7

    assert config.load(edit_params(params_copy, edit)).classification.maml_matched.iterations == 7


def test_budgets_and_runs_per_method(params_copy):
    cfg = config.load(params_copy).classification
    assert cfg.runs("fomaml") == (0,) and cfg.runs("maml_matched") == cfg.replicates == (0, 1, 2)
    assert cfg.budget("scratch", 5, 1) == {"episodes": 0, "images": 0}
    assert cfg.budget("pretrained", 5, 1) == {"episodes": 0, "images": 64000}
    assert cfg.budget("maml", 5, 1) == {"episodes": 1600, "images": 1600 * 5 * (1 + 5)}
    reml = {"episodes": 400, "images": 400 * 5 * (3 + 5)}
    assert cfg.budget("maml_matched", 5, 5)["episodes"] == 400 == cfg.budget("pretrained_matched", 5, 1)["images"] // 40
    assert cfg.budget("reml_maskable", 5, 1) == reml == cfg.budget("reml_random", 5, 5)
