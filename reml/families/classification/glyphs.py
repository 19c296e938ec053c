"""An offline, Omniglot-shaped glyph dataset rendered from the fonts that ship with matplotlib.

Nothing can be downloaded on the machines this benchmark runs on, so the default classification data
is generated: alphabet = Unicode script (Latin, Greek, Cyrillic, Arabic, Canadian syllabics, ...),
class = one letter of it, instance = that letter drawn by one of the DejaVu/STIX fonts that cover it,
under a random affine distortion (rotation, shear, scale, shift) and stroke width, rendered at 28x28
with strokes = 1 on a 0 background (like inverted Omniglot).

Letters that look alike across scripts (Latin A, Greek Alpha, Cyrillic A) or within one (accented
variants that blur together at 28x28), or that are a rotation of another letter (ɐ and a) or of
themselves (O), would be two classes with the same images once rotations are added, so a letter whose
plain rendering correlates above ``dedupe`` with a rotation of an already kept letter's, or with its own
rotation, is dropped (letters are visited script by script, in code-point order). The kept letters
of each script are shuffled and cut into meta-train / meta-val / meta-test shares, so no class (and
no rotation of one, which the training code adds per split) is in two partitions. Everything is
drawn from one seeded generator.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.ft2font import FT2Font
from PIL import Image, ImageDraw, ImageFont

from reml.core.config import ConfigError
from reml.core.io import ArtifactError
from reml.families.classification.data import SPLITS, ImageSet

# The text fonts of matplotlib's data directory; the TeX (cm*), symbol (STIXSiz*, STIXNonUni*) and
# LastResort (a box for every code point) fonts are left out.
FONT_PREFIXES = ("DejaVuSans", "DejaVuSerif", "STIXGeneral")
LETTER_CATEGORIES = ("Lu", "Ll", "Lo")
CANVAS = 64  # glyphs are drawn at this size, distorted, then downsampled to the target size


def font_files() -> list[Path]:
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = sorted(p for p in folder.glob("*.ttf") if p.name.startswith(FONT_PREFIXES) and "Display" not in p.name)
    if not fonts:
        raise ArtifactError(f"{folder}: no DejaVu or STIX fonts found; is matplotlib installed completely?")
    return fonts


def script_of(char: str) -> str:
    """The first word of a character's Unicode name: LATIN, GREEK, CANADIAN, ..."""
    return unicodedata.name(char, "?").split()[0]


def letters_by_script(scripts: Sequence[str], fonts: Sequence[Path]) -> dict[str, dict[str, list[Path]]]:
    """``{script: {letter: [fonts that have it]}}`` for the letters (categories Lu, Ll, Lo) of ``scripts``."""
    found: dict[str, dict[str, list[Path]]] = {s: {} for s in scripts}
    for font in fonts:
        for code in sorted(FT2Font(str(font)).get_charmap()):
            char = chr(code)
            if unicodedata.category(char) in LETTER_CATEGORIES and script_of(char) in found:
                found[script_of(char)].setdefault(char, []).append(font)
    return {s: dict(sorted(letters.items())) for s, letters in found.items()}


def available_scripts(fonts: Sequence[Path] | None = None) -> list[str]:
    """Every script with at least one letter in ``fonts`` (default: matplotlib's), sorted."""
    found = {
        script_of(chr(code))
        for font in fonts or font_files()
        for code in FT2Font(str(font)).get_charmap()
        if unicodedata.category(chr(code)) in LETTER_CATEGORIES
    }
    return sorted(found)


class Renderer:
    """Draws one letter in one font, optionally distorted, as a (size, size) float array in [0, 1]."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._fonts: dict[Path, ImageFont.FreeTypeFont] = {}

    def font(self, path: Path) -> ImageFont.FreeTypeFont:
        if path not in self._fonts:
            self._fonts[path] = ImageFont.truetype(str(path), size=CANVAS // 2)
        return self._fonts[path]

    def draw(self, char: str, font: Path, rng: np.random.Generator | None = None) -> np.ndarray:
        """Centred on its ink's bounding box; ``rng`` draws the distortion (None: the plain rendering)."""
        stroke = 0 if rng is None else int(rng.integers(0, 2))
        image = Image.new("L", (CANVAS, CANVAS), 0)
        ImageDraw.Draw(image).text((CANVAS / 2, CANVAS / 2), char, fill=255, font=self.font(font), anchor="mm",
                                   stroke_width=stroke, stroke_fill=255)  # fmt: skip
        box = image.getbbox()
        if box is None:  # the font has the code point but no ink for it
            return np.zeros((self.size, self.size), dtype=np.float32)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        extent = max(box[2] - box[0], box[3] - box[1], 1)
        scale = 0.8 * CANVAS / extent  # the ink fills 80% of the canvas before distortion
        angle = shear = shift_x = shift_y = 0.0
        if rng is not None:
            scale *= rng.uniform(0.8, 1.05)
            angle, shear = rng.uniform(-0.25, 0.25), rng.uniform(-0.3, 0.3)
            shift_x, shift_y = rng.uniform(-0.06, 0.06, size=2) * CANVAS
        # output pixel p maps to input pixel c + A^-1 (p - centre - shift), A = scale * rotation * shear
        forward = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        forward = forward @ np.array([[1.0, shear], [0.0, 1.0]])
        inverse = np.linalg.inv(forward)
        centre = np.array([CANVAS / 2 + shift_x, CANVAS / 2 + shift_y])
        offset = np.array([cx, cy]) - inverse @ centre
        coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
        warped = image.transform((CANVAS, CANVAS), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
        small = warped.resize((self.size, self.size), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float32) / 255.0


def _normalised(image: np.ndarray) -> np.ndarray:
    centred = image.ravel() - image.mean()
    return centred / max(float(np.linalg.norm(centred)), 1e-8)


def distinct_letters(
    candidates: Sequence[tuple[str, str, list[Path]]], renderer: Renderer, threshold: float, min_ink: float = 0.01
) -> list[tuple[str, str, list[Path]]]:
    """Keep a letter unless its plain rendering (first font) correlates above ``threshold`` with a kept
    letter's rendering *or any 90-degree rotation of it*, looks like its own 90/180/270-degree rotation,
    or has (almost) no ink. ``candidates`` are (letter, script, fonts), visited in order.

    Rotations matter because the training code adds each class's rotations as new classes (Finn): a
    test letter that is a rotated training letter (Latin ɐ and a/rot180), or a letter equal to its own
    rotation (O), would otherwise be a class seen in training or two identical classes."""
    kept, vectors = [], []
    for letter, script, fonts in candidates:
        image = renderer.draw(letter, fonts[0])
        if image.mean() < min_ink:
            continue
        rotations = [_normalised(np.rot90(image, r)) for r in range(4)]
        if max(float(rotations[0] @ rotations[r]) for r in range(1, 4)) > threshold:
            continue
        if vectors and float(np.max(np.stack(vectors) @ rotations[0])) > threshold:
            continue
        kept.append((letter, script, fonts))
        vectors.extend(rotations)
    return kept


def letter_name(letter: str, script: str) -> str:
    return f"{script}/U+{ord(letter):04X}"


def generate(
    scripts: Sequence[str],
    instances: int,
    size: int,
    dedupe: float,
    split: Sequence[float],
    seed: int,
    progress: bool = False,
) -> dict[str, ImageSet]:
    """The three partitions (train, val, test) of the glyph dataset; deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    renderer = Renderer(size)
    by_script = letters_by_script(scripts, font_files())
    empty = [s for s, letters in by_script.items() if not letters]
    if empty:  # before any rendering: the error names the key
        raise ConfigError(
            f"classification.glyphs.scripts: {empty} have no letters in matplotlib's fonts; "
            f"scripts with letters: {', '.join(available_scripts())}"
        )
    candidates = [(c, s, fonts) for s, letters in by_script.items() for c, fonts in letters.items()]
    kept = distinct_letters(candidates, renderer, dedupe)
    parts: dict[str, list[tuple[str, str, list[Path]]]] = {name: [] for name in SPLITS}
    for script in scripts:
        letters = [entry for entry in kept if entry[1] == script]
        order = rng.permutation(len(letters))
        bounds = np.round(np.cumsum(split) / sum(split) * len(letters)).astype(int)
        for name, start, stop in zip(SPLITS, [0, *bounds[:-1]], bounds, strict=True):
            parts[name].extend(letters[i] for i in order[start:stop])
    iterator = [(name, entry) for name in SPLITS for entry in parts[name]]
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="glyphs", unit="class", mininterval=2.0)
    images: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for name, (letter, _, fonts) in iterator:
        chosen = [fonts[i % len(fonts)] for i in rng.permutation(max(instances, len(fonts)))[:instances]]
        drawn = [renderer.draw(letter, font, rng) for font in chosen]
        images[name].append(np.round(np.stack(drawn) * 255).astype(np.uint8))
    empty = torch.zeros(0, instances, size, size, dtype=torch.uint8)
    return {
        name: ImageSet(
            images=torch.from_numpy(np.stack(images[name])) if images[name] else empty,
            names=tuple(letter_name(e[0], e[1]) for e in parts[name]),
            alphabets=tuple(e[1] for e in parts[name]),
        )
        for name in SPLITS
    }
