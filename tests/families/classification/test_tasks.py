"""Classification tasks: N-way K-shot episodes worked out by hand, rotations as new classes, fixed episodes."""

import numpy as np
import pytest
import torch

from reml.core.seeding import generator
from reml.families.classification import config
from reml.families.classification.tasks import fixed_episodes, sample_episode
from tests.families.classification.helpers import numbered_pool, toy_pool


def test_episode_classes_instances_and_labels():
    pool = numbered_pool()
    ep = sample_episode(pool, n_way=3, k_shot=2, n_query=2, generator=generator(0, "episode-test"))
    assert ep.support_x.shape == (6, 1, 4, 4) and ep.query_x.shape == (6, 1, 4, 4)
    assert ep.support_y.tolist() == [0, 0, 1, 1, 2, 2] and ep.query_y.tolist() == [0, 0, 1, 1, 2, 2]
    assert len(set(ep.classes.tolist())) == 3  # N distinct classes
    tags = lambda x: x[:, 0, 0, 0].long().tolist()  # noqa: E731
    for label, cls in enumerate(ep.classes.tolist()):
        support = [t for t, y in zip(tags(ep.support_x), ep.support_y.tolist(), strict=True) if y == label]
        query = [t for t, y in zip(tags(ep.query_x), ep.query_y.tolist(), strict=True) if y == label]
        assert all(t // 100 == cls for t in support + query)  # every image of a label is of its class
        assert not set(support) & set(query)  # no instance in both support and query
    # labels are permuted per episode: label 0 is not always the same class
    firsts = {sample_episode(pool, 3, 1, 1, generator(s, "episode-test")).classes[0].item() for s in range(20)}
    assert len(firsts) > 1
    with pytest.raises(ValueError, match="7-way episodes need 7 classes; the pool has 6"):
        sample_episode(pool, 7, 1, 1, generator(0, "x"))
    with pytest.raises(ValueError, match="K \\+ Q = 6 instances per class; the pool has 5"):
        sample_episode(pool, 2, 3, 3, generator(0, "x"))


def test_rotations_are_new_classes():
    pool = numbered_pool(2, 1)
    pool.images[0, 0, 0, 0, 1] = 7.0
    rotated = pool.with_rotations()
    assert rotated.n_classes == 8 and rotated.names[2] == "c0/rot90" and len(set(rotated.names)) == 8
    assert torch.equal(rotated.images[2, 0, 0], torch.rot90(pool.images[0, 0, 0], 1))
    assert not torch.equal(rotated.images[0], rotated.images[2])


def test_fixed_episodes_are_the_same_for_every_caller(params_copy):
    cfg = config.load(params_copy).classification
    pool = toy_pool()
    a = fixed_episodes(pool, cfg, 3, 1, 5, "test")
    b = fixed_episodes(pool, cfg, 3, 1, 5, "test")
    c = fixed_episodes(pool, cfg, 3, 1, 5, "val")
    assert torch.equal(a.support_x, b.support_x) and not torch.equal(a.support_x, c.support_x)
    assert np.array_equal(a.query_y.numpy(), b.query_y.numpy())
