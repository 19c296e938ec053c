"""Few-shot classification data (issue 5, first part): episodes by hand, rotations, and the Omniglot and
MiniImageNet loaders on tiny fake trees in each published layout (nothing is downloaded)."""

import numpy as np
import pytest
import torch
from PIL import Image

from reml.io import ArtifactError
from reml.seeding import generator
from reml.tasks.images import ClassPool, load_miniimagenet, load_omniglot, sample_episode


def numbered_pool(n_classes=6, n_instances=5):
    """Pixel (0, 0) of instance i of class c holds 100·c + i, so every image says where it came from."""
    images = torch.zeros(n_classes, n_instances, 1, 4, 4)
    for c in range(n_classes):
        for i in range(n_instances):
            images[c, i, 0, 0, 0] = 100 * c + i
    return ClassPool(images, tuple(f"c{c}" for c in range(n_classes)))


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


def write_png(path, value, mode="L", size=(10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = () if mode == "L" else (3,)
    Image.fromarray(np.full((*size, *channels), value, dtype=np.uint8), mode).save(path)


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
