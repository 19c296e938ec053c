"""Stage evaluate_mixed: score every method trained on the mixture of task families, and the untrained
and ablation rows, on each family's fixed test set through the shared harness (research question 4;
reml/families/sinusoid/mixed.py)."""

from pathlib import Path

from reml.core import stage
from reml.core.headline import write_headline
from reml.core.io import write_json
from reml.core.tasks import load_taskset
from reml.families.sinusoid import config, mixed


def run(args, params: config.SinusoidParams) -> None:
    paths = {name: Path(args.unrelated_dir) / f"{name}.safetensors" for name in params.train_mixed.families}
    paths["sinusoid"] = Path(args.test_tasks)
    test_sets = {name: load_taskset(paths[name]) for name in params.train_mixed.families}
    result = mixed.evaluate(params, test_sets, Path(args.models_dir), device=args.device)
    write_json(args.scores_out, result.scores)
    write_json(args.paired_out, result.paired)
    write_json(args.methods_out, result.methods)
    write_headline(args.headline_dir, result.headline)
    stage.wrote(args.scores_out, args.paired_out, args.methods_out, args.headline_dir)


if __name__ == "__main__":
    paths = ("test_tasks", "unrelated_dir", "models_dir", "scores_out", "paired_out", "methods_out", "headline_dir")
    stage.main(run, __doc__, config.load, *paths)
