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
    ],
)
def test_bad_classification_params_are_named(params_copy, edit, message):
    path = edit_params(params_copy, edit)
    with pytest.raises(ValueError, match=message):
        config.load(path)
