"""The compute device is threaded through, not assumed: CPU moves are no-ops (so CPU results do not
change), tensor files load onto a device, and the training loops run wholly on their device without
reading a loss back every step.

No GPU is needed: PyTorch's ``meta`` device stands in for one. A meta tensor has a shape but no data,
so an elementwise op that mixes it with a CPU tensor raises, and reading one back (``.item()``,
``.tolist()``, ``.cpu()``) raises too. The tests at the end compare against CUDA where there is one.
"""

import pytest
import torch

import reml.core.traininglog as traininglog
from reml.core.harness import Adaptation, batched_trajectories, mse, score
from reml.core.io import load_tensors, save_tensors
from reml.core.nets import MLP, on_device
from reml.core.seeding import generator
from reml.core.traininglog import TrainingLog
from reml.families.classification.baselines import fresh_head, train_classifier
from reml.families.classification.nets import ConvNet, cross_entropy
from reml.families.classification.tasks import EpisodeDistribution
from reml.families.sinusoid.baselines import train_joint_regression
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.config import MamlConfig, ReptileConfig
from reml.methods.maml import MetaBatches
from reml.methods.meta_learners import meta_train
from tests.families.classification.helpers import toy_pool

CPU, META = torch.device("cpu"), torch.device("meta")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_moving_to_the_cpu_returns_the_very_same_tensors():
    params = MLP((1, 8, 1)).init(generator(0, "t"))
    assert all(moved is params[k] for k, moved in on_device(params, CPU).items())
    tasks = SinusoidDistribution().sample(3, 4, 5, generator(0, "t"))
    moved = tasks.to(CPU)
    assert all(getattr(moved, n) is getattr(tasks, n) for n in ("support_x", "support_y", "query_x", "query_y"))
    assert moved.to(torch.float64).support_x.dtype == torch.float64  # still casts, as before


def test_tensor_files_load_onto_a_device_and_save_from_one(tmp_path):
    params = MLP((1, 8, 1)).init(generator(0, "t"))
    save_tensors(tmp_path / "a.safetensors", params, {"k": 1})
    save_tensors(tmp_path / "b.safetensors", {k: v.clone().requires_grad_() for k, v in params.items()}, {"k": 1})
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    for device in ("cpu", CPU):
        loaded, meta = load_tensors(tmp_path / "a.safetensors", "test", "t", device=device)
        assert meta == {"k": 1} and all(torch.equal(loaded[k], params[k]) for k in params)
        assert all(v.device == CPU for v in loaded.values())


def test_a_log_of_tensor_losses_holds_the_floats_item_would_give():
    losses = torch.rand(23, generator=generator(0, "t"))
    from_floats, from_tensors = TrainingLog("l", every=5), TrainingLog("l", every=5)
    for i, loss in enumerate(losses, 1):
        from_floats.add(i, loss.item(), last=i == len(losses))
        from_tensors.add(i, loss, last=i == len(losses))
    assert from_tensors == from_floats and len(from_floats.loss) == 5


@pytest.fixture
def unread(monkeypatch):
    """Record each window's losses instead of reading them back (a meta tensor cannot be read)."""
    windows = []

    def record(values):
        windows.append(list(values))
        return [0.0] * len(values)

    monkeypatch.setattr(traininglog, "as_floats", record)
    return windows


def assert_on_meta(windows, params, iterations):
    losses = [v for w in windows for v in w]
    assert len(losses) == iterations
    assert all(isinstance(v, torch.Tensor) and v.device == META for v in losses)  # never read, never on the CPU
    assert all(v.device == META for v in params.values())


def test_joint_regression_runs_on_its_device_without_reading_a_loss(unread):
    params, _ = train_joint_regression(MLP((3, 8, 1)), SinusoidDistribution(), "x+task_params", 4, 3, 5, 1e-3,
                                       generator(0, "t"), log_every=2, device=META)  # fmt: skip
    assert_on_meta(unread, params, 4)


@pytest.mark.parametrize(
    "cfg", [MamlConfig(0, 3, 3, 0.01, 1, 1e-3, False), ReptileConfig(0, 3, 3, 0.02, 2, 1.0)], ids=["maml", "reptile"]
)
def test_meta_training_runs_on_its_device_without_reading_a_loss(unread, cfg):
    batches = MetaBatches(SinusoidDistribution(), 3, 5, 5, generator(0, "t"))
    params, _ = meta_train(MLP((1, 8, 1)), cfg, batches, mse, 100, "t", device=META)
    assert_on_meta(unread, params, 3)


def test_classifiers_train_on_their_device_without_reading_a_loss(unread):
    pool = toy_pool(n_classes=4, size=8)
    params, _ = train_classifier(ConvNet(1, 4, 4, 8, n_blocks=2), pool, 2, batch_size=4, lr=0.01,
                                 generator=generator(0, "t"), device=META)  # fmt: skip
    assert_on_meta(unread, params, 2)
    fresh = fresh_head(params, 2, 3)
    assert fresh["2.weight"].device == META and fresh["2.bias"].shape == (3,)
    unread.clear()
    batches = MetaBatches(EpisodeDistribution(pool, 3), 2, 1, 2, generator(0, "t"))
    cfg = MamlConfig(0, 2, 2, 0.4, 1, 1e-3, False)
    params, _ = meta_train(ConvNet(1, 4, 3, 8, n_blocks=2), cfg, batches, cross_entropy, 100, "t", device=META)
    assert_on_meta(unread, params, 2)


def test_adaptation_runs_on_the_device_of_its_inputs():
    model = MLP((1, 8, 1))
    params = on_device(model.init(generator(0, "t")), META)
    tasks = SinusoidDistribution().sample(3, 4, 5, generator(0, "t")).to(META)
    for optimizer in ("sgd", "adam"):
        out = batched_trajectories(model, params, tasks.support_x, tasks.support_y, tasks.query_x,
                                   Adaptation(optimizer, 0.01, 2))  # fmt: skip
        assert out.device == META and out.shape == (3, 3, 5, 1)


def test_scores_come_back_on_the_cpu():
    model = MLP((1, 8, 1))
    tasks = SinusoidDistribution().sample(3, 4, 5, generator(0, "t"))
    curve = score(model, model.init(generator(0, "t")), tasks, Adaptation("sgd", 0.01, 2))
    assert curve.per_task.device == CPU and curve.per_task.dtype == torch.float64


# --------------------------------------------------------------------------- on a GPU, where there is one


@needs_cuda
def test_cuda_training_and_scoring_match_the_cpu():
    """Not bit-identical (other kernels), but the same computation: the same draws, close numbers."""
    cuda = torch.device("cuda")

    def run(device):
        model = MLP((1, 16, 1))
        trained, log = train_joint_regression(model, SinusoidDistribution(), "x", 20, 4, 5, 1e-3,
                                              generator(0, "t"), log_every=10, device=device)  # fmt: skip
        tasks = SinusoidDistribution().sample(8, 5, 10, generator(1, "t")).to(device)
        return trained, log, score(model, trained, tasks, Adaptation("adam", 0.01, 3))

    (p_cpu, log_cpu, c_cpu), (p_gpu, log_gpu, c_gpu) = run(CPU), run(cuda)
    assert all(v.device.type == "cuda" for v in p_gpu.values()) and c_gpu.per_task.device == CPU
    for k in p_cpu:
        torch.testing.assert_close(p_gpu[k].cpu(), p_cpu[k], rtol=1e-4, atol=1e-5)
    assert log_gpu.iterations == log_cpu.iterations
    torch.testing.assert_close(torch.tensor(log_gpu.loss), torch.tensor(log_cpu.loss), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(c_gpu.per_task, c_cpu.per_task, rtol=1e-4, atol=1e-6)


@needs_cuda
def test_cuda_tensors_save_the_same_bytes_and_load_onto_cuda(tmp_path):
    params = MLP((1, 8, 1)).init(generator(0, "t"))
    save_tensors(tmp_path / "cpu.safetensors", params, {})
    save_tensors(tmp_path / "gpu.safetensors", on_device(params, "cuda"), {})
    assert (tmp_path / "cpu.safetensors").read_bytes() == (tmp_path / "gpu.safetensors").read_bytes()
    loaded, _ = load_tensors(tmp_path / "cpu.safetensors", "test", "t", device=torch.device("cuda"))
    assert all(v.device.type == "cuda" and torch.equal(v.cpu(), params[k]) for k, v in loaded.items())
