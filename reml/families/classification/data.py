"""The classification data on disk, and where it comes from.

Every split is one safetensors file of uint8 images (:class:`ImageSet`), whatever made it: the glyph
renderer (:mod:`reml.families.classification.glyphs`, the offline default) or the importers of real
Omniglot and MiniImageNet from a local directory (nothing is downloaded), so every later stage reads
one kind of file.
"""

from __future__ import annotations

import csv
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from reml.core.config import ConfigError
from reml.core.io import ArtifactError, load_tensors, reading, save_tensors
from reml.families.classification.config import ClassificationConfig
from reml.families.classification.tasks import ClassPool

SPLITS = ("train", "val", "test")
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
class ImageSet:
    """One split as stored on disk: uint8 images (classes, instances, H, W) or (classes, instances, 3, H, W),
    a name per class and the alphabet (script) it belongs to. The glyph generator and the Omniglot and
    MiniImageNet importers all write this format, so every later stage reads one kind of file."""

    images: Tensor
    names: tuple[str, ...]
    alphabets: tuple[str, ...]

    def pool(self) -> ClassPool:
        images = self.images[:, :, None] if self.images.ndim == 4 else self.images
        return ClassPool(images.float() / 255.0, self.names)

    @staticmethod
    def from_pool(pool: ClassPool) -> ImageSet:
        images = (pool.images * 255).round().clamp(0, 255).to(torch.uint8)
        images = images[:, :, 0] if images.shape[2] == 1 else images
        return ImageSet(images, pool.names, tuple(n.split("/")[0] for n in pool.names))


def save_images(path: str | Path, images: ImageSet) -> None:
    save_tensors(path, {"images": images.images}, {"names": list(images.names), "alphabets": list(images.alphabets)})


def load_images(path: str | Path, made_by: str = "generate_images") -> ImageSet:
    tensors, meta = load_tensors(path, "image set", made_by)
    with reading(path, "image set", made_by):
        images = tensors["images"]
        loaded = ImageSet(images, tuple(meta["names"]), tuple(meta["alphabets"]))
        if images.dtype != torch.uint8 or images.ndim not in (4, 5) or images.shape[0] != len(loaded.names):
            raise ValueError(f"images {images.dtype} {tuple(images.shape)} for {len(loaded.names)} classes")
    return loaded


# What PIL raises for a file it cannot or will not decode (truncated, not an image, too large).
PIL_ERRORS = (OSError, UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning,
              SyntaxError, ValueError, EOFError)  # fmt: skip


def _read_image(path: Path, size: int, mode: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # an image of 89M+ pixels
            with Image.open(path) as image:
                image = image.convert(mode).resize((size, size), Image.Resampling.LANCZOS)
                array = np.asarray(image, dtype=np.float32) / 255.0
    except PIL_ERRORS as err:
        raise ArtifactError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None
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


def load_split(data_dir: str | Path, split: str, cfg: ClassificationConfig) -> ClassPool:
    """One split written by the generate_images stage, as float images, with rotation classes if
    ``classification.rotations``; checked to hold the largest N-way episode with K + Q images per class
    the config asks for, so a mismatch is named before any training."""
    path = Path(data_dir) / f"{split}.safetensors"
    pool = load_images(path, made_by="generate_images").pool()
    pool = pool.with_rotations() if cfg.rotations else pool
    n_way, per_class = max(cfg.ways), max(cfg.shots) + cfg.n_query
    if pool.n_classes < n_way:
        raise ConfigError(
            f"classification.ways: {n_way}-way episodes need {n_way} classes; {path} has {pool.n_classes}"
            f"{' (with rotations)' if cfg.rotations else ''}: lower ways or use a larger data set"
        )
    if pool.n_instances < per_class:
        raise ConfigError(
            f"classification.shots / n_query: K + Q = {per_class} images per class; {path} has "
            f"{pool.n_instances} per class: lower shots or n_query"
        )
    return pool


def import_local(cfg: ClassificationConfig) -> dict[str, ImageSet]:
    """The three splits of Omniglot or MiniImageNet, imported from ``classification.data_dir``."""
    loader = load_omniglot if cfg.dataset == "omniglot" else load_miniimagenet
    return {name: ImageSet.from_pool(pool) for name, pool in loader(cfg.data_dir).items()}
