"""Stage make_figures: the seaborn figures of the sinusoid report, from the evaluation tables."""

import json
from pathlib import Path

import pandas as pd

from reml.core import stage
from reml.core.figures import save_png
from reml.core.io import require_file, write_text
from reml.core.plots import long_table
from reml.families.sinusoid import config
from reml.families.sinusoid.evaluate import producing_stage
from reml.families.sinusoid.figures import plot_columns, report_figures


def logs(paths: list[str]) -> dict[str, pd.DataFrame]:
    """Training curves by method (the file's stem is ``<method>-<replicate>``), each from the stage that
    writes it."""
    return {Path(p).stem.rpartition("-")[0]: pd.read_csv(require_file(p, producing_stage(Path(p).stem)))
            for p in paths}  # fmt: skip


def run(args, params: config.SinusoidParams) -> None:
    # the runs train_reml makes with these params, never whatever else lies in the directory (older runs)
    cfg = params.train_reml
    runs = [config.reml_run(a, e, v, r) for a in cfg.agents for e in cfg.encodings for v in cfg.variants
            for r in params.replicates]  # fmt: skip
    reml_logs = {run: pd.read_csv(require_file(Path(args.reml_logs_dir) / f"{run}.csv", f"train_reml@{run}"))
                 for run in runs}  # fmt: skip
    curves = pd.read_csv(require_file(args.curves, "evaluate_fewshot"))
    long_curves = pd.read_csv(require_file(args.long_curves, "evaluate_fewshot"))
    figures = report_figures(
        params,
        curves=curves,
        examples=pd.read_csv(require_file(args.examples, "evaluate_fewshot"), keep_default_na=False),
        training_logs=logs(args.training_logs),
        meta_training_logs=logs(args.meta_training_logs),
        long_curves=long_curves,
        unrelated=json.loads(require_file(args.unrelated, "evaluate_fewshot").read_text()),
        reml_logs=reml_logs,
        mixed=json.loads(require_file(args.mixed, "evaluate_mixed").read_text()),
    )
    for name, figure in figures.items():
        save_png(figure, Path(args.out_dir) / name, params.make_figures.dpi)
    methods, long = params.evaluate_fewshot.methods, params.evaluate_fewshot.long_finetune
    write_text(args.plots_out, long_table(curves, plot_columns(methods, params.adaptation.shots)).to_csv(index=False))
    write_text(args.long_plots_out, long_table(long_curves, plot_columns(long.methods, [long.k])).to_csv(index=False))
    stage.wrote(*(Path(args.out_dir) / name for name in figures), args.plots_out, args.long_plots_out)


if __name__ == "__main__":
    paths = (
        "curves",
        "examples",
        "long_curves",
        "unrelated",
        "mixed",
        "reml_logs_dir",
        "out_dir",
        "plots_out",
        "long_plots_out",
    )
    stage.main(run, __doc__, config.load, *paths, training_logs=list, meta_training_logs=list, on_device=False)
