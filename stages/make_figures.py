"""Stage make_figures: the seaborn figures of the report, from the evaluation tables."""

import json
from pathlib import Path

import pandas as pd

from reml import figures, stage
from reml.io import ArtifactError, require_file


def run(args, params):
    cfg, shots = params.make_figures, params.adaptation.shots
    curves = pd.read_csv(require_file(args.curves, "evaluate_fewshot"))
    examples = pd.read_csv(require_file(args.examples, "evaluate_fewshot"), keep_default_na=False)
    logs = {Path(p).stem: pd.read_csv(require_file(p, stage.producing_stage(Path(p).stem))) for p in args.training_logs}
    meta_logs = {
        Path(p).stem: pd.read_csv(require_file(p, stage.producing_stage(Path(p).stem))) for p in args.meta_training_logs
    }
    long_curves = pd.read_csv(require_file(args.long_curves, "evaluate_fewshot"))
    unrelated = json.loads(require_file(args.unrelated, "evaluate_fewshot").read_text())
    reml_logs = {p.stem: pd.read_csv(p) for p in sorted(Path(args.reml_logs_dir).glob("*.csv"))}
    if not reml_logs:
        raise ArtifactError(f"{args.reml_logs_dir}: no REML training curves; rerun `dvc repro train_reml`")
    methods = list(params.evaluate_fewshot.methods)
    long = params.evaluate_fewshot.long_finetune
    out = Path(args.out_dir)
    written = [
        out / "curves.png",
        *(out / f"examples_k{k}.png" for k in shots),
        out / "training.png",
        out / "meta_training.png",
    ]
    extra = {
        out / "long_finetune.png": figures.learning_curves(
            long_curves, list(long.methods), [long.k], xlabel=f"{long.optimizer} steps (lr {long.lr:g})", log_y=True
        ),
        out / "reml_training.png": figures.reml_training(reml_logs),
        out / "unrelated.png": figures.unrelated_tasks(
            unrelated, params.evaluate_fewshot.unrelated_k, params.adaptation.steps
        ),  # fmt: skip
    }
    figures.save_png(figures.learning_curves(curves, methods, shots), written[0], cfg.dpi)
    for k, path in zip(shots, written[1:-2], strict=True):
        figures.save_png(figures.example_fits(examples, k, cfg.example_steps, methods), path, cfg.dpi)
    figures.save_png(figures.training_curves(logs, "train_mse", "training MSE (window mean)"), written[-2], cfg.dpi)
    meta_label = "meta-loss (query MSE after adapting)"
    figures.save_png(figures.training_curves(meta_logs, "meta_loss", meta_label), written[-1], cfg.dpi)
    for path, fig in extra.items():
        figures.save_png(fig, path, cfg.dpi)
    stage.wrote(*written, *extra)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--curves", required=True)
    p.add_argument("--examples", required=True)
    p.add_argument("--training-logs", nargs="+", required=True)
    p.add_argument("--meta-training-logs", nargs="+", required=True)
    p.add_argument("--long-curves", required=True)
    p.add_argument("--unrelated", required=True, help="metrics JSON of the unrelated task families")
    p.add_argument("--reml-logs-dir", required=True, help="directory of the train_reml training curves")
    p.add_argument("--out-dir", required=True)
    stage.main(run, p)
