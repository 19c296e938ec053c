"""Few-shot classification: the glyph generator, splits, the conv net, the cross-entropy harness,
MAML on conv nets, the conv REML environment, config errors and the generate_images stage."""

import numpy as np
import pytest
import torch
import yaml
from test_images import write_png

from baselines.classifier import fresh_head, train_classifier
from baselines.maml import maml_meta_gradient, maml_meta_gradient_loop, train_maml
from conftest import run_stage
from reml.classification import (
    ClassifierCheckpoint,
    EpisodeBatch,
    EpisodeDistribution,
    classification_config,
    fixed_episodes,
    load_classifier,
    load_split,
    save_classifier,
    score_accuracy,
    tune_step_size,
)
from reml.compose_conv import BlockPool, ConvCompositionEnv, load_block_pool, save_block_pool
from reml.config import load_params
from reml.convnet import ConvNet, MlpNet, cross_entropy
from reml.harness import Adaptation, adaptation_trajectory
from reml.io import ArtifactError
from reml.report_classification import best_methods, composition_lines
from reml.seeding import generator
from reml.tasks.glyphs import (
    Renderer,
    distinct_letters,
    font_files,
    generate,
    letters_by_script,
    load_images,
    save_images,
)
from reml.tasks.images import ClassPool


@pytest.fixture(scope="module")
def glyph_splits():
    return generate(["GREEK", "ARMENIAN"], instances=12, size=28, dedupe=0.9, split=(0.6, 0.2, 0.2), seed=0)


def test_glyph_splits_are_disjoint_deterministic_and_well_formed(glyph_splits, tmp_path):
    names = {split: set(s.names) for split, s in glyph_splits.items()}
    assert all(names.values())
    assert not names["train"] & names["val"] and not names["train"] & names["test"] and not names["val"] & names["test"]
    for split in glyph_splits.values():
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (12, 28, 28)
        assert set(split.alphabets) <= {"GREEK", "ARMENIAN"}
        assert (split.images.float().mean(dim=(2, 3)) > 5).all()  # every instance has ink
        assert not torch.equal(split.images[:, 0], split.images[:, 1])  # instances differ (fonts, distortion)
    again = generate(["GREEK", "ARMENIAN"], instances=12, size=28, dedupe=0.9, split=(0.6, 0.2, 0.2), seed=0)
    assert all(torch.equal(again[s].images, glyph_splits[s].images) for s in glyph_splits)
    other = generate(["GREEK", "ARMENIAN"], instances=12, size=28, dedupe=0.9, split=(0.6, 0.2, 0.2), seed=1)
    assert set(other["test"].names) != names["test"]
    save_images(tmp_path / "train.safetensors", glyph_splits["train"])
    loaded = load_images(tmp_path / "train.safetensors")
    assert torch.equal(loaded.images, glyph_splits["train"].images) and loaded.names == glyph_splits["train"].names
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ArtifactError, match="bad.safetensors: not a valid image set"):
        load_images(tmp_path / "bad.safetensors")


def test_look_alike_letters_across_scripts_are_dropped():
    fonts = {f.name: f for f in font_files()}
    sans = [fonts["DejaVuSans.ttf"]]
    candidates = [
        ("A", "LATIN", sans),
        ("\u0391", "GREEK", sans),
        ("\u0410", "CYRILLIC", sans),
        ("\u0411", "CYRILLIC", sans),
    ]
    kept = distinct_letters(candidates, Renderer(28), threshold=0.9)
    assert [c for c, _, _ in kept] == ["A", "\u0411"]  # Greek Alpha and Cyrillic A look like Latin A; Be does not


def test_rotations_stay_in_their_split(glyph_splits, tmp_path, params_copy):
    for split, images in glyph_splits.items():
        save_images(tmp_path / f"{split}.safetensors", images)
    cfg = classification_config(load_params(params_copy))
    assert cfg.rotations
    pools = {split: load_split(tmp_path, split, cfg) for split in glyph_splits}
    for split, pool in pools.items():
        assert pool.n_classes == 4 * len(glyph_splits[split].names)
        assert pool.images.shape[2:] == (1, 28, 28) and float(pool.images.max()) <= 1.0
    bases = {split: {n.rsplit("/rot", 1)[0] for n in pool.names} for split, pool in pools.items()}
    assert not bases["train"] & bases["test"] and not bases["train"] & bases["val"]


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


def toy_pool(n_classes=12, n_instances=8, size=28):
    """Each class is a bright square at its own place: trivially separable."""
    images = torch.rand(n_classes, n_instances, 1, size, size) * 0.1
    for c in range(n_classes):
        r, col = divmod(c, 4)
        images[c, :, 0, 6 * r : 6 * r + 6, 6 * col : 6 * col + 6] += 1.0
    return ClassPool(images, tuple(f"c{c}" for c in range(n_classes)))


def test_accuracy_scoring_matches_a_plain_loop_and_ignores_query_labels():
    net = ConvNet(1, 4, 3, 28)
    params = net.init(generator(0, "t"))
    episodes = EpisodeDistribution(toy_pool(), 3).sample(4, 2, 3, generator(1, "t"))
    adaptation = Adaptation("sgd", 0.3, 3)
    curve = score_accuracy(net, params, episodes, adaptation, chunk=3)  # two chunks
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


@pytest.mark.slow
def test_short_maml_meta_training_beats_chance_on_glyphs(glyph_splits):
    """Can fail: 5-way 1-shot accuracy after 3 steps must be well above chance (20%); about 64% when written."""
    train, test = glyph_splits["train"].pool().with_rotations(), glyph_splits["test"].pool().with_rotations()
    net = ConvNet(1, 8, 5, 28)
    params, _ = train_maml(net, EpisodeDistribution(train, 5), iterations=150, meta_batch=4, k_support=1, k_query=3,
                           inner_lr=0.4, inner_steps=1, meta_lr=0.003, first_order=False, generator=generator(0, "t"),
                           loss=cross_entropy)  # fmt: skip
    episodes = EpisodeDistribution(test, 5).sample(60, 1, 3, generator(3, "t"))
    maml = score_accuracy(net, params, episodes, Adaptation("sgd", 0.4, 3)).mean
    assert maml[0] < 0.3 and maml[3] > 0.45, maml  # labels are permuted per episode: no head knows them at step 0


def test_pretrained_learns_the_training_classes_and_gets_a_fresh_head():
    pool = toy_pool(n_classes=4)
    net = ConvNet(1, 4, 4, 28)
    params, log = train_classifier(net, pool, 60, batch_size=16, lr=0.01, generator=generator(0, "t"), log_every=10)
    assert log.loss[-1] < 0.5 * log.loss[0]
    fresh = fresh_head(params, 4, 3)
    assert fresh["4.weight"].shape == (3, 4) and not fresh["4.weight"].any()
    assert torch.equal(fresh["0.conv.weight"], params["0.conv.weight"])


def make_env(write_back=True):
    net = ConvNet(1, 4, 3, 28)
    pool = BlockPool.create(net, 2, 4, 2, generator(0, "pool"))
    env = ConvCompositionEnv(pool, EpisodeDistribution(toy_pool(), 3), (1, 2), 2, 0.3, 2, 1.0, write_back, 1.0)
    return env


def test_conv_composition_env_episode_masks_and_reward():
    env = make_env()
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs) and env.n_slots == 5
    before = {k: v.clone() for k, v in env.pool.blocks["hidden"].items()}
    rewards = []
    for step in range(5):
        mask = env.action_masks()
        assert mask.sum() == [2, 4, 3, 2, 2][step]  # input blocks, hidden without repeats, heads
        obs, reward, done, _, info = env.step(0)  # block 0 is only valid in the first slot: remapped after
        rewards.append(reward)
        assert done == (step == 4) and info["invalid"] == (step > 0)
    assert 0 < rewards[-1] <= 1 and rewards[:-1] == [0.0] * 4
    assert env.pool.trained.sum() == 5  # the chosen blocks were written back
    assert any(not torch.equal(before[k], env.pool.blocks["hidden"][k]) for k in before)


def test_composing_for_a_test_episode_never_changes_the_pool(tmp_path):
    env = make_env(write_back=False)
    episode = EpisodeDistribution(toy_pool(), 3).sample(1, 2, 2, generator(5, "t"))
    save_block_pool(tmp_path / "before.safetensors", env.pool)
    env.reset(options={"support": (episode.support_x[0], episode.support_y[0])})
    for _ in range(5):
        *_, info = env.step(int(env.action_masks().argmax()))
    assert "loss" not in info and len(info["layers"]) == 5
    save_block_pool(tmp_path / "after.safetensors", env.pool)
    assert (tmp_path / "before.safetensors").read_bytes() == (tmp_path / "after.safetensors").read_bytes()
    pool = load_block_pool(tmp_path / "after.safetensors", "t")
    net, params = pool.network(info["layers"])
    assert net(params, episode.query_x[0]).shape == (6, 3)


def edit_params(params_copy, edit):
    data = yaml.safe_load(params_copy.read_text())
    edit(data["classification"])
    params_copy.write_text(yaml.safe_dump(data))
    return load_params(params_copy)


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
    params = edit_params(params_copy, edit)
    with pytest.raises(ValueError, match=message):
        classification_config(params)


def test_generate_images_imports_omniglot_and_names_a_missing_directory(params_copy, tmp_path):
    root = tmp_path / "omniglot"
    for part, n_alphabets in (("images_background", 31), ("images_evaluation", 2)):
        for a in range(n_alphabets):
            for ch in range(40):
                for i in range(2):
                    write_png(root / part / f"A{a:02d}" / f"c{ch:02d}" / f"{i}.png", 255 * i, size=(28, 28))
    data = yaml.safe_load(params_copy.read_text())
    data["classification"].update(dataset="omniglot", data_dir=str(root))
    params_copy.write_text(yaml.safe_dump(data))
    out = tmp_path / "data"
    done = run_stage("generate_images.py", "--params", str(params_copy), "--out-dir", str(out))
    assert done.returncode == 0, done.stderr
    sizes = {s: len(load_images(out / f"{s}.safetensors").names) for s in ("train", "val", "test")}
    assert sizes == {"train": 1100, "val": 100, "test": 2 * 40 + 31 * 40 - 1200}
    data["classification"]["data_dir"] = str(tmp_path / "missing")
    params_copy.write_text(yaml.safe_dump(data))
    failed = run_stage("generate_images.py", "--params", str(params_copy), "--out-dir", str(tmp_path / "none"))
    assert failed.returncode == 1 and "missing/images_background: not found" in failed.stderr
    assert not (tmp_path / "none").exists()


def test_fixed_episodes_are_the_same_for_every_caller(params_copy):
    cfg = classification_config(load_params(params_copy))
    pool = toy_pool()
    a = fixed_episodes(pool, cfg, 3, 1, 5, "test")
    b = fixed_episodes(pool, cfg, 3, 1, 5, "test")
    c = fixed_episodes(pool, cfg, 3, 1, 5, "val")
    assert torch.equal(a.support_x, b.support_x) and not torch.equal(a.support_x, c.support_x)
    assert np.array_equal(a.query_y.numpy(), b.query_y.numpy())


def test_no_class_is_a_rotation_of_another(glyph_splits):
    """Compares images, not names: no letter's plain rendering matches any rotation of another letter's,
    or of itself, across all splits (rotations become classes, so a match would leak or duplicate)."""
    renderer = Renderer(28)
    fonts = {
        c: f for letters in letters_by_script(["GREEK", "ARMENIAN"], font_files()).values() for c, f in letters.items()
    }
    images = []
    for split in glyph_splits.values():
        for name in split.names:
            letter = chr(int(name.split("U+")[1], 16))
            images.append(renderer.draw(letter, fonts[letter][0]))
    vectors = [[np.rot90(im, r).ravel() - im.mean() for r in range(4)] for im in images]
    vectors = [[v / np.linalg.norm(v) for v in vs] for vs in vectors]
    assert len(vectors) > 50
    for i, vs in enumerate(vectors):
        assert max(float(vs[0] @ vs[r]) for r in (1, 2, 3)) <= 0.9
        for j in range(i):
            assert max(float(vs[0] @ w) for w in vectors[j]) <= 0.9


def test_a_split_too_small_for_the_episodes_is_named(glyph_splits, tmp_path, params_copy):
    save_images(tmp_path / "val.safetensors", glyph_splits["val"])  # a few letters, x4 with rotations
    n_classes = 4 * len(glyph_splits["val"].names)
    cfg = classification_config(edit_params(params_copy, lambda c: c.update(ways=[n_classes + 1])))
    too_many = rf"classification\.ways: {n_classes + 1}-way episodes need .* has {n_classes}"
    with pytest.raises(ValueError, match=too_many):
        load_split(tmp_path, "val", cfg)
    cfg = classification_config(edit_params(params_copy, lambda c: c.update(ways=[2], shots=[5], n_query=10)))
    with pytest.raises(ValueError, match=r"classification\.shots / n_query: K \+ Q = 15 images per class; .* has 12"):
        load_split(tmp_path, "val", cfg)


def test_step_size_ties_go_to_the_smaller_step_size():
    """An all-zero network has zero gradients (balanced labels), so every step size scores the same."""
    net = MlpNet(4, (3,), 2)
    params = {k: torch.zeros_like(v) for k, v in net.init(generator(0, "t")).items()}  # zero net: no gradient
    x = torch.rand(2, 4, 1, 2, 2)
    episodes = EpisodeBatch(x, torch.tensor([[0, 1, 0, 1]] * 2), x, torch.tensor([[0, 1, 0, 1]] * 2))
    best, objective = tune_step_size(net, params, episodes, steps=2, grid=[0.4, 0.1, 0.2])
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


def test_report_names_every_method_level_with_the_best_and_what_reml_composed():
    def leaf(mean, ci):
        return {"acc_step5": mean, "ci95_step5": ci}

    results = {"maml": {"5w1s": leaf(0.90, 0.02)}, "reptile": {"5w1s": leaf(0.87, 0.02)},
               "scratch": {"5w1s": leaf(0.60, 0.03)}, "fomaml": {"5w1s": leaf(None, None)}}  # fmt: skip
    assert best_methods(results, "5w1s", 5) == "5w1s: maml (90.0 ± 2.0), level with reptile (87.0 ± 2.0) (CIs overlap)"
    results["reptile"]["5w1s"] = leaf(0.85, 0.02)
    assert best_methods(results, "5w1s", 5) == "5w1s: maml (90.0 ± 2.0)"
    info = {"n_test": 100, "methods": {"maml": {"5w1s": {"step_size": 0.4}},
            "reml_ppo": {"5w1s": {"step_size": 0.2, "invalid_rate": 0.8, "distinct_networks": 3}}}}  # fmt: skip
    text = composition_lines(info, ["5w1s"])
    assert "100 test episodes" in text and "- reml_ppo: 5w1s: 3 distinct network(s), 80% of choices invalid" in text
    assert "maml" not in text
