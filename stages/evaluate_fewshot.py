"""Stage evaluate_fewshot: score every sinusoid method on the same fixed test tasks through the shared
harness: the main tables, a longer fine-tune, and task families never seen in meta-training
(reml/families/sinusoid/evaluate.py)."""

from pathlib import Path

from reml.core import stage
from reml.core.headline import write_headline
from reml.core.io import write_json, write_text
from reml.core.tasks import load_taskset
from reml.families.sinusoid import config
from reml.families.sinusoid.evaluate import evaluate
from reml.families.sinusoid.tasks import UNRELATED_FAMILIES


def run(args, params: config.SinusoidParams) -> None:
    tasks = load_taskset(args.test_tasks)
    unrelated = {name: load_taskset(Path(args.unrelated_dir) / f"{name}.safetensors") for name in UNRELATED_FAMILIES}
    result = evaluate(params, tasks, unrelated, Path(args.models_dir), device=args.device)
    write_json(args.scores_out, result.metrics)
    write_headline(args.headline_dir, result.headline)
    write_json(args.unrelated_out, result.unrelated)
    write_json(args.paired_out, result.paired)
    write_text(args.curves_out, result.curves.to_csv(index=False))
    write_text(args.long_curves_out, result.long_curves.to_csv(index=False))
    write_text(args.examples_out, result.examples.to_csv(index=False))
    write_json(args.methods_out, result.methods)
    stage.wrote(args.scores_out, args.headline_dir, args.unrelated_out, args.paired_out, args.curves_out,
                args.long_curves_out, args.examples_out, args.methods_out)  # fmt: skip


if __name__ == "__main__":
    paths = ("test_tasks", "unrelated_dir", "models_dir", "scores_out", "headline_dir", "unrelated_out", "paired_out",
             "curves_out", "long_curves_out", "examples_out", "methods_out")  # fmt: skip
    stage.main(run, __doc__, config.load, *paths)
