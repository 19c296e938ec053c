"""What the classification tests share: tiny class pools, PNG files and params edits."""

import numpy as np
import torch
import yaml
from PIL import Image

from reml.families.classification.tasks import ClassPool


def numbered_pool(n_classes=6, n_instances=5):
    """Pixel (0, 0) of instance i of class c holds 100·c + i, so every image says where it came from."""
    images = torch.zeros(n_classes, n_instances, 1, 4, 4)
    for c in range(n_classes):
        for i in range(n_instances):
            images[c, i, 0, 0, 0] = 100 * c + i
    return ClassPool(images, tuple(f"c{c}" for c in range(n_classes)))


def toy_pool(n_classes=12, n_instances=8, size=28):
    """Each class is a bright square at its own place: trivially separable."""
    images = torch.rand(n_classes, n_instances, 1, size, size) * 0.1
    for c in range(n_classes):
        r, col = divmod(c, 4)
        images[c, :, 0, 6 * r : 6 * r + 6, 6 * col : 6 * col + 6] += 1.0
    return ClassPool(images, tuple(f"c{c}" for c in range(n_classes)))


def edit_params(params_copy, edit):
    data = yaml.safe_load(params_copy.read_text())
    edit(data["classification"])
    params_copy.write_text(yaml.safe_dump(data))
    return params_copy


def write_png(path, value, mode="L", size=(10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = () if mode == "L" else (3,)
    Image.fromarray(np.full((*size, *channels), value, dtype=np.uint8), mode).save(path)
