"""Stage make_figures: the seaborn figures of the sinusoid report, from the evaluation tables."""

import json
from pathlib import Path

import pandas as pd

from reml.core import stage
from reml.core.figures import save_png
from reml.core.io import ArtifactError, require_file
from reml.families.sinusoid import config
from reml.families.sinusoid.evaluate import producing_stage
from reml.families.sinusoid.figures import report_figures


def logs(paths: list[str]) -> dict[str, pd.DataFrame]:
    """Training curves by method (the file's stem), each from the stage that writes it."""
    return {Path(p).stem: pd.read_csv(require_file(p, producing_stage(Path(p).stem))) for p in paths}


def run(args, params: config.SinusoidParams) -> None:
    reml_logs = {p.stem: pd.read_csv(p) for p in sorted(Path(args.reml_logs_dir).glob("*.csv"))}
    if not reml_logs:
        raise ArtifactError(f"{args.reml_logs_dir}: no REML training curves; rerun `dvc repro train_reml`")
    figures = report_figures(
        params,
        curves=pd.read_csv(require_file(args.curves, "evaluate_fewshot")),
        examples=pd.read_csv(require_file(args.examples, "evaluate_fewshot"), keep_default_na=False),
        training_logs=logs(args.training_logs),
        meta_training_logs=logs(args.meta_training_logs),
        long_curves=pd.read_csv(require_file(args.long_curves, "evaluate_fewshot")),
        unrelated=json.loads(require_file(args.unrelated, "evaluate_fewshot").read_text()),
        reml_logs=reml_logs,
    )
    for name, figure in figures.items():
        save_png(figure, Path(args.out_dir) / name, params.make_figures.dpi)
    stage.wrote(*(Path(args.out_dir) / name for name in figures))


if __name__ == "__main__":
    paths = ("curves", "examples", "long_curves", "unrelated", "reml_logs_dir", "out_dir")
    stage.main(run, __doc__, config.load, *paths, training_logs=list, meta_training_logs=list)
