"""The classification methods other than REML: accuracy scoring against a plain loop, conv MAML's gradient
against the loop, a learning test, the pretrained head swap and its shape-checked checkpoint."""

import dataclasses

import pytest
import torch

from reml.core.harness import Adaptation, accuracy, adaptation_trajectory, score
from reml.core.io import ArtifactError
from reml.core.seeding import generator
from reml.core.tasks import TaskSet
from reml.families.classification.baselines import fresh_head, meta_gradient_for, train_classifier
from reml.families.classification.checkpoint import ClassifierCheckpoint, load_classifier, save_classifier
from reml.families.classification.nets import ConvNet, MlpNet, cross_entropy
from reml.families.classification.tasks import EpisodeDistribution, score_episodes, tune_episodes
from reml.methods.config import MamlConfig
from reml.methods.maml import MetaBatches, maml_meta_gradient, maml_meta_gradient_loop
from reml.methods.meta_learners import meta_train
from tests.families.classification.helpers import toy_pool


def test_accuracy_scoring_matches_a_plain_loop_and_ignores_query_labels():
    net = ConvNet(1, 4, 3, 28)
    params = net.init(generator(0, "t"))
    episodes = EpisodeDistribution(toy_pool(), 3).sample(4, 2, 3, generator(1, "t"))
    adaptation = Adaptation("sgd", 0.3, 3)
    curve = score(net, params, episodes, adaptation, cross_entropy, accuracy, chunk=3)  # two chunks
    for i in range(4):
        logits = adaptation_trajectory(net, params, episodes.support_x[i], episodes.support_y[i],
                                       episodes.query_x[i], adaptation, loss=cross_entropy)  # fmt: skip
        expected = (logits.argmax(-1) == episodes.query_y[i]).double().mean(-1)
        torch.testing.assert_close(curve.per_task[i], expected)
    assert curve.per_task.shape == (4, 4) and ((curve.per_task >= 0) & (curve.per_task <= 1)).all()


def test_vmapped_conv_maml_gradient_equals_the_loop():
    net = ConvNet(1, 4, 3, 28)
    params = net.init(generator(0, "t"))
    batch = EpisodeDistribution(toy_pool(), 3).sample(3, 1, 2, generator(2, "t"))
    for first_order in (False, True):
        fast, loss = maml_meta_gradient(net, params, batch, 0.4, 1, first_order, cross_entropy)
        slow, slow_loss = maml_meta_gradient_loop(net, params, batch, 0.4, 1, first_order, cross_entropy)
        torch.testing.assert_close(loss, slow_loss)
        for k in params:
            torch.testing.assert_close(fast[k], slow[k], rtol=1e-4, atol=1e-5)


def test_the_loop_and_vmap_agree_to_float64_precision_and_the_faster_one_is_chosen():
    """Which meta-gradient trains conv MAML is a speed choice only: in float64 the two agree to 1e-10."""
    net = ConvNet(1, 4, 3, 28)
    params = {k: v.double() for k, v in net.init(generator(0, "t")).items()}
    batch = EpisodeDistribution(toy_pool(), 3).sample(3, 1, 2, generator(2, "t"))
    batch = dataclasses.replace(batch, support_x=batch.support_x.double(), query_x=batch.query_x.double())
    for first_order in (False, True):
        fast, loss = maml_meta_gradient(net, params, batch, 0.4, 2, first_order, cross_entropy)
        slow, slow_loss = maml_meta_gradient_loop(net, params, batch, 0.4, 2, first_order, cross_entropy)
        torch.testing.assert_close(loss, slow_loss, rtol=1e-10, atol=1e-12)
        for k in params:
            torch.testing.assert_close(fast[k], slow[k], rtol=1e-10, atol=1e-12)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert meta_gradient_for(ConvNet(1, 16, 5, 28), cpu) is maml_meta_gradient  # the quick profile: unchanged
    assert meta_gradient_for(ConvNet(1, 64, 5, 28), cpu) is maml_meta_gradient_loop  # Finn's net on the CPU
    assert meta_gradient_for(ConvNet(1, 64, 5, 28), cuda) is maml_meta_gradient
    assert meta_gradient_for(MlpNet(784, (64,), 5), cpu) is maml_meta_gradient


@pytest.mark.slow
def test_short_maml_meta_training_beats_chance_on_glyphs(glyph_splits):
    """Can fail: 5-way 1-shot accuracy after 3 steps must be well above chance (20%); about 64% when written."""
    train, test = glyph_splits["train"].pool().with_rotations(), glyph_splits["test"].pool().with_rotations()
    net = ConvNet(1, 8, 5, 28)
    batches = MetaBatches(EpisodeDistribution(train, 5), 4, 1, 3, generator(0, "t"))
    cfg = MamlConfig(0, 150, 4, 0.4, 1, 0.003, False)
    params, _ = meta_train(net, cfg, batches, cross_entropy, 100, "maml", device=torch.device("cpu"))
    episodes = EpisodeDistribution(test, 5).sample(60, 1, 3, generator(3, "t"))
    maml = score_episodes(net, params, episodes, Adaptation("sgd", 0.4, 3)).mean
    assert maml[0] < 0.3 and maml[3] > 0.45, maml  # labels are permuted per episode: no head knows them at step 0


def test_pretrained_learns_the_training_classes_and_gets_a_fresh_head():
    pool = toy_pool(n_classes=4)
    net = ConvNet(1, 4, 4, 28)
    params, log = train_classifier(net, pool, 60, batch_size=16, lr=0.01, generator=generator(0, "t"), log_every=10,
                                   device=torch.device("cpu"))  # fmt: skip
    assert log.loss[-1] < 0.5 * log.loss[0]
    fresh = fresh_head(params, 4, 3)
    assert fresh["4.weight"].shape == (3, 4) and not fresh["4.weight"].any()
    assert torch.equal(fresh["0.conv.weight"], params["0.conv.weight"])


def test_step_size_ties_go_to_the_smaller_step_size():
    """An all-zero network has zero gradients (balanced labels), so every step size scores the same."""
    net = MlpNet(4, (3,), 2)
    params = {k: torch.zeros_like(v) for k, v in net.init(generator(0, "t")).items()}  # zero net: no gradient
    x = torch.rand(2, 4, 1, 2, 2)
    labels = torch.tensor([[0, 1, 0, 1]] * 2)
    episodes = TaskSet(x, labels, x, labels, torch.zeros(2, 0), ())
    best, objective = tune_episodes(net, params, episodes, steps=2, grid=[0.4, 0.1, 0.2])
    assert len(set(objective.values())) == 1 and best == 0.1


def test_pretrained_checkpoint_body_is_shape_checked(tmp_path):
    body = ConvNet(1, 4, 7, 28)  # trained on 7 classes; scored with a fresh 5-way head
    ckpt = ClassifierCheckpoint("pretrained", 7, body.init(generator(0, "t")), {}, {})
    save_classifier(tmp_path / "p.safetensors", ckpt)
    load_classifier(tmp_path / "p.safetensors", "t", ConvNet(1, 4, 5, 28), body_only=True)
    with pytest.raises(ArtifactError, match="parameters do not fit"):
        load_classifier(tmp_path / "p.safetensors", "t", ConvNet(1, 8, 5, 28), body_only=True)
    with pytest.raises(ArtifactError, match="parameters do not fit"):
        load_classifier(tmp_path / "p.safetensors", "t", ConvNet(1, 4, 5, 28))
    with pytest.raises(ArtifactError, match=r"p\.safetensors: holds the pretrained classifier, expected maml's"):
        load_classifier(tmp_path / "p.safetensors", "t", ConvNet(1, 4, 5, 28), body_only=True, method="maml")
