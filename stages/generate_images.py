"""Stage generate_images: the few-shot classification data, as one uint8 file per split.

``classification.dataset: glyphs`` (default) renders the offline glyph set
(reml/families/classification/glyphs.py); ``omniglot`` and ``miniimagenet`` import a local copy from
``classification.data_dir`` (nothing is downloaded). Omniglot is split as in Finn et al.'s code: all
1,623 characters shuffled (seed 1), 1,100 for meta-training, 100 for validation (step-size tuning), the
remaining 423 for meta-test.
"""

from pathlib import Path

from reml.core import stage
from reml.families.classification import config, glyphs
from reml.families.classification.data import SPLITS, import_local, save_images


def run(args, params: config.ClassificationParams) -> None:
    cfg, g = params.classification, params.classification.glyphs
    if cfg.dataset == "glyphs":
        splits = glyphs.generate(g.scripts, g.instances, g.size, g.dedupe, g.split, g.seed, progress=True)
    else:
        splits = import_local(cfg)
    for name in SPLITS:
        images = splits[name]
        save_images(Path(args.out_dir) / f"{name}.safetensors", images)
        print(f"{name}: {len(images.names)} classes from {len(set(images.alphabets))} alphabets, "
              f"{tuple(images.images.shape[1:])} per class")  # fmt: skip
    stage.wrote(args.out_dir)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "out_dir", on_device=False)
