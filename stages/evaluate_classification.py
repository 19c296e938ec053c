"""Stage evaluate_classification: score every classification method on the same fixed test episodes
(reml/families/classification/evaluate.py)."""

from pathlib import Path

from reml.core import stage
from reml.core.headline import write_headline
from reml.core.io import write_json, write_text
from reml.families.classification import config
from reml.families.classification.data import load_split
from reml.families.classification.evaluate import evaluate


def run(args, params: config.ClassificationParams) -> None:
    cfg = params.classification
    val, test = load_split(args.data_dir, "val", cfg), load_split(args.data_dir, "test", cfg)
    result = evaluate(cfg, Path(args.models_dir), val, test, device=args.device)
    write_json(args.scores_out, result.metrics)
    write_headline(args.headline_dir, result.headline())
    write_text(args.curves_out, result.curves.to_csv(index=False))
    write_json(args.methods_out, result.methods)
    stage.wrote(args.scores_out, args.headline_dir, args.curves_out, args.methods_out)


if __name__ == "__main__":
    stage.main(
        run, __doc__, config.load, "data_dir", "models_dir", "scores_out", "headline_dir", "curves_out", "methods_out"
    )
