"""The shared adaptation harness, checked against numbers worked out by hand."""

import math

import pytest
import torch

from reml.core.curve import Curve, ci95, rounded
from reml.core.harness import (
    Adaptation,
    accuracy,
    adapt,
    adaptation_trajectory,
    batched_trajectories,
    score,
    tune_step_size,
    updates,
)
from reml.core.nets import MLP
from reml.core.seeding import generator
from reml.families.sinusoid.tasks import SinusoidDistribution


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
    curve = score(model, params, tasks, Adaptation("sgd", lr=0.01, steps=10))
    unadapted = ((model(params, tasks.query_x) - tasks.query_y) ** 2).mean(dim=(1, 2))
    # Both are float32 losses (the harness reports them as float64): the batched forward may reduce in a
    # different order, so compare at float32 precision (a CI run differed by 1.2e-7 relative).
    torch.testing.assert_close(curve.per_task[:, 0].float(), unadapted)
    assert curve.per_task.shape == (20, 11)
    assert curve.mean[10] < curve.mean[0]


def test_tuning_rejects_diverging_step_sizes():
    model, params, tasks = sample_problem()
    best, objective = tune_step_size(lambda a: score(model, params, tasks, a), "sgd", 10, grid=[1e-4, 1e-2, 3e-2, 1e3])
    assert objective[1e3] == math.inf
    assert best == 3e-2 and objective[3e-2] < objective[1e-2] < objective[1e-4]


def test_adaptation_rejects_bad_settings():
    with pytest.raises(ValueError, match="step size must be finite and > 0, got -0.1"):
        Adaptation("sgd", lr=-0.1, steps=1)
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'adam'"):
        Adaptation("rmsprop", lr=0.1, steps=1)


def test_scoring_in_chunks_equals_scoring_at_once():
    model, params, tasks = sample_problem(n=23)
    adaptation = Adaptation("sgd", lr=0.01, steps=3)
    whole = score(model, params, tasks, adaptation)
    torch.testing.assert_close(score(model, params, tasks, adaptation, chunk=5).per_task, whole.per_task)


def test_accuracy_by_hand():
    # two tasks, one step (0 and 1), two query examples of 3 classes each
    logits = torch.tensor([[[[2.0, 0, 0], [0, 3.0, 0]], [[0, 0, 1.0], [0, 1.0, 0]]],
                           [[[0, 0, 1.0], [1.0, 0, 0]], [[0, 0, 1.0], [0, 0, 1.0]]]])  # fmt: skip
    labels = torch.tensor([[0, 1], [2, 2]])
    assert accuracy(logits, labels).tolist() == [[1.0, 0.5], [0.5, 1.0]]


def test_tuning_for_accuracy_prefers_the_higher_score_and_the_smaller_step_on_ties():
    scores = {0.1: 0.5, 0.2: 0.8, 0.4: 0.8, 0.8: math.nan}

    def evaluate(a):
        return Curve(torch.full((3, 2), scores[a.lr], dtype=torch.float64))

    best, objective = tune_step_size(evaluate, "sgd", 1, [0.8, 0.4, 0.2, 0.1], higher_is_better=True)
    assert best == 0.2 and objective[0.8] == -math.inf


def test_first_order_steps_detach_the_inner_gradient():
    model, params = tiny_relu_net()
    sx, sy = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [5.0]])
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    for first_order in (False, True):
        adapted = adapt(model, leaves, sx, sy, Adaptation("sgd", 0.1, 1), first_order=first_order)
        (g,) = torch.autograd.grad(adapted["1.weight"].sum(), [leaves["0.weight"]], allow_unused=True)
        # w2' = w2 - lr dL/dw2 depends on w1 through the gradient only: zero once that is detached
        assert (g is None or float(g.abs().sum()) == 0.0) == first_order
    assert len(list(updates(model, params, sx, sy, Adaptation("adam", 0.1, 3)))) == 3


def test_curve_statistics_by_hand():
    curve = Curve(torch.tensor([[1.0, 2.0], [3.0, math.inf], [5.0, 4.0]], dtype=torch.float64))
    assert curve.mean[0].item() == 3.0 and curve.steps == 1
    assert curve.diverged.tolist() == [0, 1]
    assert rounded(curve.mean[1], 4) is None and rounded(curve.mean[0], 4) == 3.0
    other = Curve(torch.ones(3, 2, dtype=torch.float64))
    assert curve.minus(other).per_task[:, 0].tolist() == [0.0, 2.0, 4.0]
    with pytest.raises(ValueError, match="curves of shapes"):
        curve.minus(Curve(torch.ones(2, 2)))
