"""The shared adaptation harness, checked against numbers worked out by hand."""

import math

import pytest
import torch

from reml.harness import Adaptation, adaptation_trajectory, batched_trajectories, ci95, score, tune_step_size
from reml.nets import MLP
from reml.seeding import generator
from reml.tasks import SinusoidDistribution


def test_ci95_by_hand():
    # population std of 1, 2, 3, 4 is sqrt(1.25); 1.96 * sqrt(1.25) / sqrt(4) = 1.0956733...
    values = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    assert ci95(values).item() == pytest.approx(1.96 * math.sqrt(1.25) / 2)


def tiny_relu_net():
    """1-1-1 ReLU net: h = relu(w1 x + b1), y = w2 h + b2, with w1 = 1, b1 = 0, w2 = 0.5, b2 = 0."""
    model = MLP((1, 1, 1))
    params = {
        "0.weight": torch.tensor([[1.0]]), "0.bias": torch.tensor([0.0]),
        "1.weight": torch.tensor([[0.5]]), "1.bias": torch.tensor([0.0]),
    }  # fmt: skip
    return model, params


def test_one_sgd_step_by_hand():
    # Support x = (1, 2), y = (3, 5). Predictions 0.5x = (0.5, 1.0), residuals r = (-2.5, -4).
    # dL/dw2 = mean(2 r h) = (-5 - 16)/2 = -10.5     dL/db2 = mean(2 r) = -6.5
    # dL/dw1 = mean(2 r w2 x) = (-2.5 - 8)/2 = -5.25 dL/db1 = mean(2 r w2) = -3.25
    # After one step with lr 0.1: w1 = 1.525, b1 = 0.325, w2 = 1.55, b2 = 0.65.
    # Query x = 3, y = 7: before, 1.5 -> MSE 30.25; after, 1.55 * (1.525*3 + 0.325) + 0.65 = 8.245 -> 1.550025.
    model, params = tiny_relu_net()
    sx, sy = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [5.0]])
    qx, qy = torch.tensor([[3.0]]), torch.tensor([[7.0]])
    preds = adaptation_trajectory(model, params, sx, sy, qx, Adaptation("sgd", lr=0.1, steps=1))
    assert preds[:, 0, 0].tolist() == pytest.approx([1.5, 8.245])
    assert ((preds - qy) ** 2)[:, 0, 0].tolist() == pytest.approx([30.25, 1.550025])
    assert params["0.weight"].item() == 1.0  # adaptation returns new parameters, never mutates


def test_one_adam_step_by_hand():
    # Adam's first bias-corrected step is lr * g / (|g| + eps), i.e. lr * sign(g) for every parameter.
    # All four gradients above are negative, so every parameter grows by 0.1:
    # w1 = 1.1, b1 = 0.1, w2 = 0.6, b2 = 0.1 -> query prediction 0.6 * (3.3 + 0.1) + 0.1 = 2.14.
    model, params = tiny_relu_net()
    sx, sy = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [5.0]])
    preds = adaptation_trajectory(model, params, sx, sy, torch.tensor([[3.0]]), Adaptation("adam", lr=0.1, steps=1))
    assert preds[1, 0, 0].item() == pytest.approx(2.14, abs=1e-6)


def sample_problem(n=20, k=20):
    model = MLP((1, 8, 8, 1))
    params = model.init(generator(0, "harness-test"))
    tasks = SinusoidDistribution().sample(n, k, 11, generator(1, "harness-test"))
    return model, params, tasks


def test_batched_equals_per_task_loop():
    model, params, tasks = sample_problem()
    adaptation = Adaptation("sgd", lr=0.01, steps=4)
    batched = batched_trajectories(model, params, tasks.support_x, tasks.support_y, tasks.query_x, adaptation)
    for i in range(len(tasks)):
        single = adaptation_trajectory(
            model, params, tasks.support_x[i], tasks.support_y[i], tasks.query_x[i], adaptation
        )
        torch.testing.assert_close(batched[i], single, rtol=1e-5, atol=1e-6)


def test_step_zero_is_the_unadapted_loss_and_adaptation_helps():
    model, params, tasks = sample_problem()
    curve = score(model, params, tasks, "x", Adaptation("sgd", lr=0.01, steps=10))
    unadapted = ((model(params, tasks.query_x) - tasks.query_y) ** 2).mean(dim=(1, 2))
    # Both are float32 losses (the harness reports them as float64): the batched forward may reduce in a
    # different order, so compare at float32 precision (a CI run differed by 1.2e-7 relative).
    torch.testing.assert_close(curve.per_task[:, 0].float(), unadapted)
    assert curve.per_task.shape == (20, 11)
    assert curve.mean[10] < curve.mean[0]


def test_tuning_rejects_diverging_step_sizes():
    model, params, tasks = sample_problem()
    best, objective = tune_step_size(model, params, tasks, "x", "sgd", 10, grid=[1e-4, 1e-2, 3e-2, 1e3])
    assert objective[1e3] == math.inf
    assert best == 3e-2 and objective[3e-2] < objective[1e-2] < objective[1e-4]


def test_adaptation_rejects_bad_settings():
    with pytest.raises(ValueError, match="step size must be finite and > 0, got -0.1"):
        Adaptation("sgd", lr=-0.1, steps=1)
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'adam'"):
        Adaptation("rmsprop", lr=0.1, steps=1)
