"""MAML, first-order MAML and Reptile on torch.func: verified against plain autograd, not assumed."""

import pytest
import torch

from reml.core.harness import Adaptation, adapt, mse, score
from reml.core.nets import MLP
from reml.core.seeding import generator
from reml.families.sinusoid.baselines import train_joint_regression
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.config import MamlConfig, ReptileConfig
from reml.methods.maml import MetaBatches, maml_meta_gradient, maml_meta_gradient_loop, maml_meta_loss
from reml.methods.meta_learners import meta_train
from reml.methods.reptile import reptile_step

CPU = torch.device("cpu")


def tiny_problem(meta_batch=4, k=5, dtype=torch.float64):
    """A 1-8-8-1 net and a small meta-batch, in float64 so that comparisons can be tight."""
    model = MLP((1, 8, 8, 1))
    params = {k_: v.to(dtype) for k_, v in model.init(generator(0, "maml-test")).items()}
    return model, params, SinusoidDistribution().sample(meta_batch, k, k, generator(1, "maml-test")).to(dtype)


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("first_order", [False, True])
def test_vmapped_meta_gradient_equals_per_task_loop(steps, first_order):
    """Second order: the loop differentiates through the inner step (create_graph=True); first order:
    the loop's inner gradient is detached. The vmapped torch.func version must match either to 1e-5."""
    model, params, batch = tiny_problem()
    vmapped, loss_v = maml_meta_gradient(model, params, batch, 0.05, steps, first_order)
    looped, loss_l = maml_meta_gradient_loop(model, params, batch, 0.05, steps, first_order)
    torch.testing.assert_close(loss_v, loss_l, rtol=0, atol=1e-10)
    for name in params:
        torch.testing.assert_close(vmapped[name], looped[name], rtol=1e-5, atol=1e-5)


def test_first_and_second_order_differ():
    """Guard against a test that cannot fail: the two variants give different meta-gradients here."""
    model, params, batch = tiny_problem()
    second, _ = maml_meta_gradient(model, params, batch, 0.05, 1, first_order=False)
    first, _ = maml_meta_gradient(model, params, batch, 0.05, 1, first_order=True)
    gap = max((second[k] - first[k]).abs().max().item() for k in params)
    assert gap > 1e-4


def test_second_order_meta_gradient_matches_finite_differences():
    """Directional derivative of the meta-loss along a random direction, by central differences."""
    model, params, batch = tiny_problem()
    meta_grad, _ = maml_meta_gradient(model, params, batch, 0.05, 1, first_order=False)
    rng = generator(2, "maml-test")
    direction = {k: torch.randn(v.shape, generator=rng, dtype=v.dtype) for k, v in params.items()}
    eps = 1e-6

    def loss_at(sign):
        shifted = {k: v + sign * eps * direction[k] for k, v in params.items()}
        return maml_meta_loss(model, shifted, batch, 0.05, 1, first_order=False).item()

    numeric = (loss_at(+1) - loss_at(-1)) / (2 * eps)
    analytic = sum((meta_grad[k] * direction[k]).sum().item() for k in params)
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_maml_beats_pretrained_after_a_few_hundred_meta_iterations():
    """A learning test that can fail: 800 meta-iterations of MAML against 800 iterations of joint
    regression (same net, data per step and seed policy), scored after one SGD step of size α."""
    model, distribution = MLP((1, 40, 40, 1)), SinusoidDistribution()
    batches = MetaBatches(distribution, 10, 10, 10, generator(0, "learning-test/maml"))
    maml_cfg = MamlConfig(0, 800, 10, 0.01, 1, 1e-3, False)
    maml_params, _ = meta_train(model, maml_cfg, batches, mse, 100, "maml", device=CPU)
    pretrained, _ = train_joint_regression(
        model, distribution, "x", 800, 10, 10, 1e-3, generator(0, "learning-test/pretrained"), device=CPU
    )
    tasks = distribution.sample(200, 10, 50, generator(0, "learning-test/tasks"))
    one_step = Adaptation("sgd", lr=0.01, steps=1)
    maml_mse = score(model, maml_params, tasks, one_step).mean[1].item()
    pretrained_mse = score(model, pretrained, tasks, one_step).mean[1].item()
    assert maml_mse < 0.85 * pretrained_mse, (maml_mse, pretrained_mse)


@pytest.mark.parametrize(
    "cfg",
    [MamlConfig(0, 20, 3, 0.01, 1, 1e-3, False), ReptileConfig(0, 20, 3, 0.02, 2, 1.0)],
    ids=["maml", "reptile"],
)
def test_meta_training_is_deterministic(cfg):
    model, distribution = MLP((1, 8, 1)), SinusoidDistribution()

    def run(seed):
        batches = MetaBatches(distribution, 3, 5, 5, generator(seed, "d"))
        return meta_train(model, cfg, batches, mse, 5, "test", device=CPU)

    (a, log_a), (b, log_b), (c, _) = run(0), run(0), run(1)
    assert all(torch.equal(a[k], b[k]) for k in a) and log_a == log_b
    assert not torch.equal(a["0.weight"], c["0.weight"])
    assert len(log_a.loss) == 4 and log_a.column == "meta_loss"


def test_reptile_step_moves_toward_the_mean_of_adapted_weights():
    """θ ← θ + ε (mean_i φ_i − θ): ε = 1 lands on the mean of the adapted weights, ε = 0.5 halfway."""
    model, params, batch = tiny_problem(meta_batch=3)
    inner = Adaptation("sgd", 0.05, 3)
    adapted = [adapt(model, params, batch.support_x[i], batch.support_y[i], inner) for i in range(3)]
    mean = {k: torch.stack([a[k] for a in adapted]).mean(dim=0) for k in params}
    full, _ = reptile_step(model, params, batch, 0.05, 3, outer_lr=1.0)
    half, _ = reptile_step(model, params, batch, 0.05, 3, outer_lr=0.5)
    for k in params:
        torch.testing.assert_close(full[k], mean[k])
        torch.testing.assert_close(half[k], (params[k] + mean[k]) / 2)
