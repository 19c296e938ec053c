"""Stage generate_images: the few-shot classification data, as one uint8 file per split.

``classification.dataset: glyphs`` (default) renders the offline glyph set (reml/tasks/glyphs.py);
``omniglot`` and ``miniimagenet`` import a local copy from ``classification.data_dir`` (nothing is
downloaded). Omniglot is split as in Finn et al.'s code: all 1,623 characters shuffled (seed 1), 1,100
for meta-training, 100 for validation (step-size tuning), the remaining 423 for meta-test.
"""

from pathlib import Path

from reml import stage
from reml.classification import classification_config
from reml.tasks.glyphs import SPLITS, ImageSet, generate, save_images
from reml.tasks.images import load_miniimagenet, load_omniglot


def run(args, params):
    cfg = classification_config(params)
    if cfg.dataset == "glyphs":
        g = cfg.glyphs
        splits = generate(g.scripts, g.instances, g.size, g.dedupe, g.split, g.seed, progress=True)
    elif cfg.dataset == "omniglot":
        splits = {name: ImageSet.from_pool(pool) for name, pool in load_omniglot(cfg.data_dir).items()}
    else:
        splits = {name: ImageSet.from_pool(pool) for name, pool in load_miniimagenet(cfg.data_dir).items()}
    out = Path(args.out_dir)
    for name in SPLITS:
        images = splits[name]
        save_images(out / f"{name}.safetensors", images)
        print(f"{name}: {len(images.names)} classes from {len(set(images.alphabets))} alphabets, "
              f"{tuple(images.images.shape[1:])} per class")  # fmt: skip
    stage.wrote(out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--out-dir", required=True, help="where train/val/test.safetensors go")
    stage.main(run, p)
