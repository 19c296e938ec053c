"""Finn et al.'s classifiers: batch norm on the batch's statistics, the conv and MLP variants."""

import torch

from reml.core.seeding import generator
from reml.families.classification.nets import ConvNet, MlpNet


def test_batch_norm_uses_the_batch_statistics():
    net = ConvNet(1, 4, 3, 28)
    params = net.init(generator(0, "t"))
    x = torch.rand(6, 1, 28, 28)
    logits = net(params, x)
    assert logits.shape == (6, 3)
    assert not torch.allclose(net(params, x[:3]), logits[:3])  # depends on the rest of the batch
    features = net.features(params, x)
    assert features.shape == (6, net.n_features) and net.n_features == 4  # 28 -> 14 -> 7 -> 3 -> 1
    mlp = MlpNet(784, (256, 128, 64, 64), 5)
    assert mlp(mlp.init(generator(0, "t")), x).shape == (6, 5)
