"""Few-shot image classification data (issue 5, first part): class pools, N-way K-shot episodes, and
loaders for real Omniglot and MiniImageNet from a local directory (nothing is downloaded).

A :class:`ClassPool` holds ``(n_classes, n_instances, 1 or 3, H, W)`` float images in [0, 1] and a name
per class. An episode draws N distinct classes, then K support and Q query instances of each, without
overlap, and relabels the N classes by a random permutation (so a label never identifies a class
across episodes). The generate_images stage writes the splits; reml.classification reads them.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from reml.io import ArtifactError

OMNIGLOT_LAYOUT = (
    "expected the published Omniglot layout: <root>/images_background/<alphabet>/<character>/*.png and "
    "<root>/images_evaluation/<alphabet>/<character>/*.png (unzip images_background.zip and images_evaluation.zip "
    "from github.com/brendenlake/omniglot into <root>)"
)
MINIIMAGENET_LAYOUT = (
    "expected the Ravi & Larochelle MiniImageNet layout: <root>/images/*.jpg and <root>/train.csv, val.csv, "
    "test.csv, each with a header 'filename,label' and one row per image"
)


@dataclass(frozen=True)
class ClassPool:
    """Images of every class of one split; ``images[c, i]`` is instance ``i`` of class ``c``."""

    images: Tensor  # (n_classes, n_instances, channels, H, W), float32 in [0, 1]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 5 or self.images.shape[0] != len(self.names):
            raise ValueError(f"images {tuple(self.images.shape)} do not match {len(self.names)} class names")

    @property
    def n_classes(self) -> int:
        return self.images.shape[0]

    @property
    def n_instances(self) -> int:
        return self.images.shape[1]

    def with_rotations(self) -> ClassPool:
        """Finn et al.'s augmentation: each class rotated by 90, 180 and 270 degrees is a new class."""
        rotated = [torch.rot90(self.images, r, dims=(3, 4)) for r in range(4)]
        names = tuple(f"{n}/rot{90 * r}" for r in range(4) for n in self.names)
        return ClassPool(torch.cat(rotated), names)


@dataclass(frozen=True)
class Episode:
    """One N-way task: ``support_x`` (N·K, C, H, W), ``support_y`` (N·K,), ``query_x`` (N·Q, C, H, W),
    ``query_y`` (N·Q,); ``classes`` (N,) the pool's class of each episode label."""

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    classes: Tensor


def sample_episode(pool: ClassPool, n_way: int, k_shot: int, n_query: int, generator: torch.Generator) -> Episode:
    """N distinct classes, K support + Q query instances of each (disjoint), labels permuted."""
    if n_way > pool.n_classes:
        raise ValueError(f"{n_way}-way episodes need {n_way} classes; the pool has {pool.n_classes}")
    if k_shot + n_query > pool.n_instances:
        raise ValueError(f"K + Q = {k_shot + n_query} instances per class; the pool has {pool.n_instances}")
    classes = torch.randperm(pool.n_classes, generator=generator)[:n_way]  # a random order = permuted labels
    support, query = [], []
    for c in classes:
        order = torch.randperm(pool.n_instances, generator=generator)
        support.append(pool.images[c, order[:k_shot]])
        query.append(pool.images[c, order[k_shot : k_shot + n_query]])
    labels = torch.arange(n_way)
    return Episode(
        support_x=torch.cat(support),
        support_y=labels.repeat_interleave(k_shot),
        query_x=torch.cat(query),
        query_y=labels.repeat_interleave(n_query),
        classes=classes,
    )


def _read_image(path: Path, size: int, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image = image.convert(mode).resize((size, size), Image.Resampling.LANCZOS)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as err:
        raise ArtifactError(f"{path}: not a readable image ({err})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _stack(classes: list[tuple[str, list[Path]]], size: int, mode: str, root: Path) -> ClassPool:
    counts = {len(files) for _, files in classes}
    if len(counts) != 1:
        raise ArtifactError(f"{root}: classes have different numbers of images ({sorted(counts)}); every class needs "
                            "the same number")  # fmt: skip
    images = [[_read_image(f, size, mode) for f in files] for _, files in classes]
    return ClassPool(torch.from_numpy(np.asarray(images, dtype=np.float32)), tuple(name for name, _ in classes))


def load_omniglot(root: str | Path, size: int = 28, n_train: int = 1100, n_val: int = 100) -> dict[str, ClassPool]:
    """Omniglot split as in Finn et al.'s code: every character of both parts, shuffled with Python's
    ``random`` seeded 1, then ``n_train`` for meta-training, ``n_val`` for validation, the rest (423) for
    meta-test. Finn shuffles the order ``os.listdir`` happens to return; we shuffle the sorted order, so
    the procedure and sizes match but not necessarily the very characters. Images are inverted so
    strokes are 1; rotations are added by the caller (:meth:`ClassPool.with_rotations`)."""
    root = Path(root)
    characters: list[tuple[str, list[Path]]] = []
    for part in ("images_background", "images_evaluation"):
        folder = root / part
        if not folder.is_dir():
            raise ArtifactError(f"{folder}: not found; {OMNIGLOT_LAYOUT}")
        for alphabet in sorted(p for p in folder.iterdir() if p.is_dir()):
            for character in sorted(p for p in alphabet.iterdir() if p.is_dir()):
                files = sorted(character.glob("*.png"))
                if not files:
                    raise ArtifactError(f"{character}: no .png images; {OMNIGLOT_LAYOUT}")
                characters.append((f"{alphabet.name}/{character.name}", files))
    if len(characters) <= n_train + n_val:
        raise ArtifactError(
            f"{root}: {len(characters)} characters, need more than {n_train + n_val}; {OMNIGLOT_LAYOUT}"
        )
    random.Random(1).shuffle(characters)
    pool = _stack(characters, size, "L", root)
    images, names = 1.0 - pool.images, pool.names
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(names))}
    return {split: ClassPool(images[a:b], names[a:b]) for split, (a, b) in bounds.items()}


def load_miniimagenet(root: str | Path, size: int = 84) -> dict[str, ClassPool]:
    """MiniImageNet in the Ravi & Larochelle layout, one :class:`ClassPool` per split (train, val, test)."""
    root = Path(root)
    if not (root / "images").is_dir():
        raise ArtifactError(f"{root / 'images'}: not found; {MINIIMAGENET_LAYOUT}")
    splits = {}
    for split in ("train", "val", "test"):
        path = root / f"{split}.csv"
        if not path.is_file():
            raise ArtifactError(f"{path}: not found; {MINIIMAGENET_LAYOUT}")
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows or rows[0] != ["filename", "label"] or any(len(r) != 2 for r in rows[1:]):
            raise ArtifactError(f"{path}: malformed; {MINIIMAGENET_LAYOUT}")
        by_label: dict[str, list[Path]] = {}
        for filename, label in rows[1:]:
            by_label.setdefault(label, []).append(root / "images" / filename)
        missing = [p for files in by_label.values() for p in files if not p.is_file()]
        if missing:
            raise ArtifactError(f"{path}: {len(missing)} listed images are missing, e.g. {missing[0]}")
        splits[split] = _stack(sorted(by_label.items()), size, "RGB", root)
    overlap = set(splits["train"].names) & (set(splits["val"].names) | set(splits["test"].names))
    if overlap or set(splits["val"].names) & set(splits["test"].names):
        raise ArtifactError(f"{root}: a class appears in two splits ({sorted(overlap)[:3]}...); {MINIIMAGENET_LAYOUT}")
    return splits
