"""Stage evaluate_rl: score every RL method on the same held-out test tasks of each family, with the
same action noise (reml/families/rl/evaluate.py)."""

from pathlib import Path

from reml.core import stage
from reml.core.headline import write_headline
from reml.core.io import write_json, write_text
from reml.families.rl import config
from reml.families.rl.evaluate import evaluate


def run(args, params: config.RLParams) -> None:
    result = evaluate(params.rl, Path(args.models_dir), device=args.device)
    write_json(args.scores_out, result.metrics)
    write_headline(args.headline_dir, result.headline())
    write_text(args.curves_out, result.curves.to_csv(index=False))
    write_json(args.methods_out, result.methods)
    stage.wrote(args.scores_out, args.headline_dir, args.curves_out, args.methods_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "models_dir", "scores_out", "headline_dir", "curves_out", "methods_out")
