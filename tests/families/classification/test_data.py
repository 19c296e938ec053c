"""The classification data on disk: the glyph renderer (splits disjoint, deterministic and well formed,
look-alike and rotated letters dropped), the image-set file, and the Omniglot and MiniImageNet importers
on tiny fake trees in each published layout (nothing is downloaded), through the generate_images stage too."""

import numpy as np
import pytest
import torch
import yaml

from reml.core.io import ArtifactError
from reml.families.classification import config
from reml.families.classification.data import load_images, load_miniimagenet, load_omniglot, load_split, save_images
from reml.families.classification.glyphs import Renderer, distinct_letters, font_files, generate, letters_by_script
from tests.families.classification.helpers import edit_params, write_png
from tests.helpers import run_stage


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


def test_omniglot_layout_split_and_errors(tmp_path):
    for part, alphabets in (("images_background", ("Alpha", "Beta")), ("images_evaluation", ("Gamma",))):
        for a in alphabets:
            for ch in ("character01", "character02"):
                for i in range(3):
                    write_png(tmp_path / part / a / ch / f"{i}.png", 255 if i else 0)
    splits = load_omniglot(tmp_path, size=8, n_train=3, n_val=1)
    sizes = {name: pool.images.shape for name, pool in splits.items()}
    assert sizes == {"train": (3, 3, 1, 8, 8), "val": (1, 3, 1, 8, 8), "test": (2, 3, 1, 8, 8)}
    every = [n for pool in splits.values() for n in pool.names]
    assert sorted(every) == sorted(f"{a}/character0{c}" for a in ("Alpha", "Beta", "Gamma") for c in (1, 2))
    assert every != sorted(every)  # shuffled (seed 1) across both parts, as in Finn et al.'s code
    again = load_omniglot(tmp_path, size=8, n_train=3, n_val=1)
    assert all(again[k].names == splits[k].names for k in splits)  # deterministic
    first = splits["train"].images[0]
    assert first[0].max() == 1.0 and first[1].max() == 0.0  # inverted: the black image 0 becomes strokes of 1
    with pytest.raises(ArtifactError, match="images_evaluation: not found; expected the published Omniglot layout"):
        write_png(tmp_path / "only_background" / "images_background" / "A" / "c" / "0.png", 0)
        load_omniglot(tmp_path / "only_background")
    with pytest.raises(ArtifactError, match="6 characters, need more than 1200"):
        load_omniglot(tmp_path)


def test_miniimagenet_layout_and_errors(tmp_path):
    for split, labels in (("train", ("n01", "n02")), ("val", ("n03",)), ("test", ("n04", "n05"))):
        rows = ["filename,label"]
        for label in labels:
            for i in range(2):
                write_png(tmp_path / "images" / f"{label}_{i}.jpg", 40 * i, mode="RGB")
                rows.append(f"{label}_{i}.jpg,{label}")
        (tmp_path / f"{split}.csv").write_text("\n".join(rows) + "\n")
    splits = load_miniimagenet(tmp_path, size=6)
    assert splits["train"].images.shape == (2, 2, 3, 6, 6) and splits["test"].names == ("n04", "n05")
    (tmp_path / "val.csv").write_text("file,class\nx.jpg,n03\n")
    with pytest.raises(ArtifactError, match=r"val\.csv: malformed; expected the Ravi & Larochelle MiniImageNet layout"):
        load_miniimagenet(tmp_path)
    (tmp_path / "val.csv").write_text("filename,label\nabsent.jpg,n03\n")
    with pytest.raises(ArtifactError, match=r"val\.csv: 1 listed images are missing"):
        load_miniimagenet(tmp_path)
    with pytest.raises(ArtifactError, match=r"images: not found"):
        load_miniimagenet(tmp_path / "nowhere")


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


def test_rotations_stay_in_their_split(glyph_splits, tmp_path, params_copy):
    for split, images in glyph_splits.items():
        save_images(tmp_path / f"{split}.safetensors", images)
    cfg = config.load(params_copy).classification
    assert cfg.rotations
    pools = {split: load_split(tmp_path, split, cfg) for split in glyph_splits}
    for split, pool in pools.items():
        assert pool.n_classes == 4 * len(glyph_splits[split].names)
        assert pool.images.shape[2:] == (1, 28, 28) and float(pool.images.max()) <= 1.0
    bases = {split: {n.rsplit("/rot", 1)[0] for n in pool.names} for split, pool in pools.items()}
    assert not bases["train"] & bases["test"] and not bases["train"] & bases["val"]


def test_a_split_too_small_for_the_episodes_is_named(glyph_splits, tmp_path, params_copy):
    save_images(tmp_path / "val.safetensors", glyph_splits["val"])  # a few letters, x4 with rotations
    n_classes = 4 * len(glyph_splits["val"].names)
    cfg = config.load(edit_params(params_copy, lambda c: c.update(ways=[n_classes + 1]))).classification
    too_many = rf"classification\.ways: {n_classes + 1}-way episodes need .* has {n_classes}"
    with pytest.raises(ValueError, match=too_many):
        load_split(tmp_path, "val", cfg)
    cfg = config.load(edit_params(params_copy, lambda c: c.update(ways=[2], shots=[5], n_query=10))).classification
    with pytest.raises(ValueError, match=r"classification\.shots / n_query: K \+ Q = 15 images per class; .* has 12"):
        load_split(tmp_path, "val", cfg)
