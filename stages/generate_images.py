"""Stage generate_images: the few-shot classification data, as one uint8 file per split.

``classification.dataset: glyphs`` (default) renders the offline glyph set (reml/tasks/glyphs.py);
``omniglot`` and ``miniimagenet`` import a local copy from ``classification.data_dir`` (nothing is
downloaded). Omniglot keeps Finn et al.'s split (the first 1,200 characters for meta-training, the
rest for meta-test); its last 100 training characters are set aside for validation (step-size tuning).
"""

from pathlib import Path

from reml import stage
from reml.classification import classification_config
from reml.tasks.glyphs import SPLITS, ImageSet, generate, save_images
from reml.tasks.images import ClassPool, load_miniimagenet, load_omniglot

OMNIGLOT_VAL = 100  # of Finn's 1,200 training characters, held out for validation


def run(args, params):
    cfg = classification_config(params)
    if cfg.dataset == "glyphs":
        g = cfg.glyphs
        splits = generate(g.scripts, g.instances, g.size, g.dedupe, g.split, g.seed, progress=True)
    elif cfg.dataset == "omniglot":
        loaded = load_omniglot(cfg.data_dir)
        train = loaded["train"]
        cut = train.n_classes - OMNIGLOT_VAL
        parts = {
            "train": ClassPool(train.images[:cut], train.names[:cut]),
            "val": ClassPool(train.images[cut:], train.names[cut:]),
            "test": loaded["test"],
        }
        splits = {name: ImageSet.from_pool(pool) for name, pool in parts.items()}
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
