"""Sinusoid REML agents: the three SB3 algorithms train deterministically, save and load without pickle,
and compose for test tasks from the support points alone with the pool left bit-identical."""

import math
import subprocess
import sys
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml

from reml.core.harness import Adaptation, adapt, mse, score
from reml.core.io import ArtifactError
from reml.core.seeding import configure_torch, generator
from reml.core.tasks import TaskSet
from reml.families.sinusoid import reml
from reml.families.sinusoid.config import RemlConfig, parse
from reml.families.sinusoid.reml import RegressionComposer, load_composer, make_env, save_composer
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.config import REML_AGENTS, PoolConfig, PpoConfig
from reml.methods.reml.agents import TrainingCurve, make_agent
from reml.methods.reml.pool import linear_pool, pool_tensors
from tests.helpers import REPO

CPU = torch.device("cpu")

SHOTS = (5, 10)
CFG = RemlConfig(
    pool=PoolConfig(width=8, n_input=2, n_hidden=5, n_output=2),
    depth=3,
    k_query=10,
    inner_optimizer="adam",
    inner_lr=0.005,
    inner_steps=3,
    reward="terminal",
    reward_scale=1.0,
    write_back=True,
    pool_update="overwrite",
    blend=1.0,
    meta_lr=1e-3,
    first_order=True,
    slot_pools=False,
    candidate_scores=False,
)
PPO_CFG = PpoConfig(learning_rate=3e-4, clip_range=0.2, n_steps=40, batch_size=20, n_epochs=2, gamma=0.99, ent_coef=0.0)


def train(agent, encoding="support", seed=0, timesteps=80):
    configure_torch()
    pool = linear_pool(1, 8, 1, 2, 5, 2, generator(seed, "agents-test"))
    env = make_env(pool, CFG, SinusoidDistribution(), SHOTS, encoding)
    algorithm = make_agent(agent, env, PPO_CFG, seed)
    curve = TrainingCurve(log_every=40)
    algorithm.learn(timesteps, callback=curve)
    eval_env = make_env(env.pool, CFG, SinusoidDistribution(), SHOTS, encoding, write_back=False)
    return RegressionComposer(agent, algorithm, eval_env, encoding, step_sizes={5: 0.01, 10: 0.01}), curve


def pool_state(pool):
    return {k: v.clone() for k, v in pool_tensors(pool).items()}


def save(directory, composer, info):
    save_composer(directory, composer, CFG, PPO_CFG, SHOTS, info)


def sample_tasks(n=6, k=10, seed=9):
    return SinusoidDistribution().sample(n, k, 15, generator(seed, "agents-test/tasks"))


@pytest.mark.parametrize("agent", REML_AGENTS)
def test_same_seed_same_agent_pool_and_curve(agent):
    (a, curve_a), (b, curve_b) = train(agent), train(agent)
    for x, y in zip(a.algorithm.policy.parameters(), b.algorithm.policy.parameters(), strict=True):
        assert torch.equal(x, y)
    assert all(torch.equal(t, pool_state(b.pool)[n]) for n, t in pool_state(a.pool).items())
    assert curve_a.rows == curve_b.rows and len(curve_a.rows) == 2
    row = curve_a.rows[-1]
    assert row["timesteps"] == 80 and 0 < row["episode_reward"] <= 1 and row["built_loss"] > 0
    if agent == "reml_maskable":
        assert row["invalid_rate"] == 0  # masks: an invalid layer is never chosen
    assert a.pool.trained.sum() > 0  # write-back happened during training


@pytest.mark.parametrize("agent", REML_AGENTS)
def test_composing_reads_support_only_and_leaves_the_pool_bit_identical(agent):
    composer, _ = train(agent)
    tasks = sample_tasks()
    before = pool_state(composer.pool)
    params, per_task = composer.initial_params(tasks)
    # Poison the query points: composing must not change, and scoring must then be NaN (so it read them).
    poisoned = TaskSet(
        tasks.support_x, tasks.support_y, torch.full_like(tasks.query_x, math.nan),
        torch.full_like(tasks.query_y, math.nan), tasks.task_params, tasks.param_names,
    )  # fmt: skip
    params_poisoned, _ = composer.initial_params(poisoned)
    assert per_task and all(torch.equal(params[k], params_poisoned[k]) for k in params)
    assert all(v.shape[0] == len(tasks) for v in params.values())
    assert all(torch.equal(t, pool_state(composer.pool)[n]) for n, t in before.items())
    curve = score(composer.model, params, tasks, Adaptation("sgd", 0.01, 2), per_task=True)
    assert torch.isfinite(curve.per_task).all()
    assert torch.isnan(
        score(composer.model, params, poisoned, Adaptation("sgd", 0.01, 2), per_task=True).per_task
    ).all()
    # Deterministic policy: composing twice gives the same networks; each network is the pool's own layers.
    again, _ = composer.initial_params(tasks)
    assert all(torch.equal(params[k], again[k]) for k in params)
    layers, _ = composer.choose({"support": (tasks.support_x[0], tasks.support_y[0])})
    expected = composer.pool.network(layers)
    assert all(torch.equal(params[k][0], expected[k]) for k in expected)


def test_per_task_scoring_matches_scoring_each_task_alone():
    composer, _ = train("reml_maskable")
    tasks = sample_tasks(n=4)
    params, _ = composer.initial_params(tasks)
    together = score(composer.model, params, tasks, Adaptation("sgd", 0.01, 3), per_task=True).per_task
    for i in range(len(tasks)):
        alone = score(composer.model, {k: v[i] for k, v in params.items()}, tasks.subset(slice(i, i + 1)),
                      Adaptation("sgd", 0.01, 3)).per_task  # fmt: skip
        torch.testing.assert_close(together[i], alone[0])


def test_oracle_composer_reads_the_task_parameters():
    composer, _ = train("reml_ppo", encoding="oracle")
    tasks = sample_tasks()
    params, _ = composer.initial_params(tasks)
    assert composer.method == "reml_ppo_oracle" and all(v.shape[0] == len(tasks) for v in params.values())


@pytest.mark.parametrize("agent", REML_AGENTS)
def test_save_and_load_round_trip_composes_identically(agent, tmp_path):
    composer, _ = train(agent)
    save(tmp_path / "run", composer, {"seed": 0})
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"policy.zip", "policy.safetensors", "pool.safetensors"}
    again, _ = train(agent)  # the same seed, trained and saved later: byte-identical files (stable DVC hashes)
    save(tmp_path / "again", again, {"seed": 0})
    for name in ("policy.zip", "policy.safetensors", "pool.safetensors"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    loaded = load_composer(tmp_path / "run", SinusoidDistribution(), "train_reml@x", device=CPU)
    assert loaded.step_sizes == composer.step_sizes and loaded.info == {"seed": 0}
    tasks = sample_tasks()
    a, _ = composer.initial_params(tasks)
    b, _ = loaded.initial_params(tasks)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_loading_a_missing_or_corrupt_agent_names_the_file(tmp_path):
    with pytest.raises(ArtifactError, match=r"policy\.safetensors: not found.*train_reml@r"):
        load_composer(tmp_path / "r", SinusoidDistribution(), "train_reml@r", device=CPU)
    composer, _ = train("reml_ppo")
    save(tmp_path / "r", composer, {})
    (tmp_path / "r" / "policy.safetensors").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match=r"policy\.safetensors: not a valid REML agent"):
        load_composer(tmp_path / "r", SinusoidDistribution(), "train_reml@r", device=CPU)


SAVE_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
from tests.families.sinusoid.test_reml import save, train
composer, _ = train("reml_maskable", timesteps=40)
save(Path(sys.argv[1]), composer, {})
"""


def test_saved_agent_is_byte_identical_across_processes(tmp_path):
    """SB3 writes memory addresses and times into its zip; a new process must still give the same bytes."""
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", SAVE_IN_A_NEW_PROCESS, str(tmp_path / name)], cwd=REPO, check=True,
                       capture_output=True)  # fmt: skip
    for name in ("policy.zip", "policy.safetensors", "pool.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with zipfile.ZipFile(tmp_path / "a" / "policy.zip") as z:
        assert b" at 0x" not in z.read("data")


def test_saved_agent_does_not_depend_on_the_machines_kernel(tmp_path, monkeypatch):
    """SB3's system_info.txt names the kernel (version and build string), which differs between machines of
    one CPU type: the same agent saved under two kernels must give the same bytes; the versions stay."""
    from stable_baselines3.common import save_util

    composer, _ = train("reml_maskable", timesteps=40)
    real = save_util.get_system_info
    for name, kernel in (("a", "Linux-6.18.4-x86_64"), ("b", "Linux-6.18.44-fc-v1045-x86_64")):

        def fake(print_info=False, kernel=kernel):
            env, text = real(print_info=False)
            return env, text.replace(text.splitlines()[0], f"- OS: {kernel} # 1 SMP")

        monkeypatch.setattr(save_util, "get_system_info", fake)
        save(tmp_path / name, composer, {})
    assert (tmp_path / "a" / "policy.zip").read_bytes() == (tmp_path / "b" / "policy.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a" / "policy.zip") as z:
        info = z.read("system_info.txt")
    assert b"- OS:" not in info and b"- PyTorch: " in info


@pytest.mark.parametrize("variant", ["meta_gradient", "relative", "sgd_inner", "slot_pools", "candidate_scores"])
def test_each_variant_trains_from_params_saves_and_loads_under_its_name(variant, tmp_path):
    """A REML variant of params.yaml trains through the stage's code, and loads back as its own row."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["train_reml"].update(timesteps=100, checkpoint_every=50, log_every=50)
    data["train_reml"]["ppo"].update(n_steps=50, batch_size=25)
    data["train_maml"]["maml_matched"]["iterations"] = data["train_pretrained_matched"]["iterations"] = 20
    data["adaptation"]["lr_grid"] = [0.01]  # step-size tuning is not what this test is about
    params = parse(data)
    val = SinusoidDistribution().sample(6, 20, 10, generator(0, "variant-test"))
    rows = reml.train(params, "reml_maskable", "support", variant, 0, val, tmp_path, device=CPU)
    assert rows and all(math.isfinite(r["built_loss"]) for r in rows)
    composer = load_composer(tmp_path, SinusoidDistribution(), "train_reml", device=CPU)
    assert composer.method == f"reml_maskable_{variant}"
    expected = params.reml_variants[variant]
    assert composer.env.pool_update == expected.pool_update and composer.env.adaptation.optimizer == (
        expected.inner_optimizer)  # fmt: skip
    assert (composer.env.slot_pools, composer.env.candidate_scores) == (expected.slot_pools, expected.candidate_scores)
    assert set(composer.info["ablations"]) == {"reml_random", "reml_fixed"}


def test_slot_pools_give_each_hidden_slot_its_own_layers_and_the_random_ablation_respects_them():
    pool = linear_pool(1, 8, 1, 2, 7, 2, generator(0, "slot-pools"))
    env = make_env(pool, replace(CFG, slot_pools=True), SinusoidDistribution(), SHOTS, "support")
    env.reset(seed=0)
    hidden = pool.indices("hidden")
    env.step(0)
    for slot in range(1, 4):
        assert env.valid_actions() == [i for i in hidden if (i - hidden.start) % 3 == slot - 1]
        assert env.action_masks().sum() == len(env.valid_actions())
        env.step(env.valid_actions()[-1])
    composer = reml.AblationComposer("reml_random", env, {}, 0, "test")
    drawn = composer.compositions(200)
    for layers in drawn:
        pool.check_network(layers)
        assert [(i - hidden.start) % 3 for i in layers[1:-1]] == [0, 1, 2]
    assert len({tuple(c) for c in drawn}) > 30  # of the 2 * 3 * 2 * 2 * 2 = 48 valid ones


def test_candidate_scores_are_each_candidates_support_loss_after_one_step():
    """The vmapped scores against a loop over candidates through the harness's own adapt (one step)."""
    pool = linear_pool(1, 8, 1, 2, 5, 2, generator(1, "candidate-scores"))
    env = make_env(pool, replace(CFG, candidate_scores=True), SinusoidDistribution(), SHOTS, "support")
    obs, _ = env.reset(seed=3)
    assert env.observation_space.shape == obs.shape
    x, y = env._task["support_x"], env._task["support_y"]
    one = Adaptation(CFG.inner_optimizer, CFG.inner_lr, 1)
    for step in range(5):
        scores = env._candidate_scores()
        valid = env.valid_actions()
        assert torch.all(scores[[i for i in range(pool.size) if i not in valid]] == -1)
        for c in valid:
            heads = [None] if step == 4 else list(pool.indices("output"))
            losses = []
            for h in heads:
                layers = [*env._chosen, c] + ([] if h is None else [h])
                model = reml.network_model(pool, len(layers))
                trained = adapt(model, pool.network(layers), x, y, one, mse)
                losses.append(float(mse(model(trained, x), y)))
            assert float(scores[c]) == pytest.approx(math.log1p(min(losses)), rel=1e-4, abs=1e-6)
        env.step(valid[-1])
    assert torch.all(env._candidate_scores() == -1)  # the network is complete


def test_candidate_scores_do_not_read_the_query_points():
    pool = linear_pool(1, 8, 1, 2, 5, 2, generator(1, "candidate-scores"))
    env = make_env(pool, replace(CFG, candidate_scores=True), SinusoidDistribution(), SHOTS, "support")
    env.reset(seed=3)
    before = env._candidate_scores()
    env._task["query_x"].fill_(float("nan"))
    env._task["query_y"].fill_(float("nan"))
    assert torch.equal(env._candidate_scores(), before)


def test_a_diverged_training_episode_leaves_the_pool_weights_as_they_were():
    """Overwriting with a network whose fine-tune blew up would put inf/NaN in the pool for good (seen with
    SGD on slot pools): such an episode pays 0 and writes nothing back."""
    pool = linear_pool(1, 8, 1, 2, 5, 2, generator(2, "diverged-episode"))
    cfg = replace(CFG, inner_optimizer="sgd", inner_lr=1e6, inner_steps=5)
    env = make_env(pool, cfg, SinusoidDistribution(), SHOTS, "support")
    env.reset(seed=0)
    reward, info = 0.0, {}
    for _ in range(5):
        _, reward, _, _, info = env.step(env.valid_actions()[0])
    assert not math.isfinite(info["loss"]) and reward == 0.0
    for kind in ("input", "hidden", "output"):
        for name, t in env.pool.parts[kind].items():
            assert torch.equal(t, pool.parts[kind][name]), (kind, name)
    assert int(env.pool.chosen.sum()) == 5


def test_a_pool_grown_huge_still_gives_a_finite_observation():
    """sgd_slot_pools, seed 2 (quick profile): fine-tunes that blew up while staying finite left layers of
    1e13-1e22 in the pool; a later partial network overflowed, its support loss was NaN and MaskablePPO
    crashed on the NaN observation. Overflowing features read as the cap (log(1 + 1e6)), like the candidate
    scores."""
    from reml.methods.reml.pool import LayerPool

    pool = linear_pool(1, 8, 1, 2, 5, 2, generator(2, "huge-pool"))
    huge = {kind: {name: t * 1e20 for name, t in parts.items()} for kind, parts in pool.parts.items()}
    env = make_env(LayerPool(huge, pool.chosen, pool.trained), CFG, SinusoidDistribution(), SHOTS, "support")
    obs, _ = env.reset(seed=0)
    seen = [obs]
    for _ in range(4):
        obs, *_ = env.step(env.valid_actions()[0])
        seen.append(obs)
    assert all(np.isfinite(o).all() for o in seen)
    assert any(np.isclose(o, math.log1p(1e6)).any() for o in seen[1:])  # the overflow did happen, read as the cap
