"""Stage make_report: write the report (reports/report.md) from the committed scores, curves and figures
of every family, with the code's commit and the exact params."""

import json
import os
from pathlib import Path

import pandas as pd

from reml.core import compute, stage, stagetimes
from reml.core.io import require_file, write_text
from reml.core.report import document, status_table
from reml.families import params as all_params
from reml.families.classification import report as classification
from reml.families.rl import report as rl
from reml.families.sinusoid import report as sinusoid


def read_json(path: str, made_by: str) -> dict:
    return json.loads(require_file(path, made_by).read_text())


def pipeline_stages() -> list[str]:
    """Every stage of dvc.yaml, its matrices expanded by DVC itself (the status table counts them). DVC
    refuses dvc.yaml as a dependency; the stage list follows from it and params.yaml (a dependency), so
    an edit of dvc.yaml alone that adds a stage reaches this table at the report's next run."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        return [s.addressing for s in repo.index.stages]


def status(params: all_params.AllParams, args, rl_scores: dict, rl_methods: dict, classification_scores: dict,
           classification_methods: dict) -> str:  # fmt: skip
    """The report's opening table: each family's rows, their stages' wall times (stage_times.json)."""
    parts = {
        "sinusoid": sinusoid.status_rows(
            params.sinusoid, read_json(args.scores, "evaluate_fewshot"), read_json(args.mixed_scores, "evaluate_mixed")
        ),  # fmt: skip
        "classification": classification.status_rows(classification_scores, classification_methods),
        "meta-RL": rl.status_rows(rl_scores, rl_methods, list(params.rl.rl.families)),
    }
    label = classification.family_label(classification_methods)

    def owner(name: str) -> tuple[str, str] | None:
        return (sinusoid.stage_owner(name) or classification.stage_owner(name, label)
                or rl.stage_owner(name, params.rl.rl.reml.agent))  # fmt: skip

    rows = [row for family_rows, _ in parts.values() for row in family_rows]
    headlines = {family: headline for family, (_, headline) in parts.items()}
    return status_table(rows, headlines, stagetimes.load(args.stage_times), owner, pipeline_stages())


def run(args, params: all_params.AllParams) -> None:
    out = Path(args.out)

    def link(path: str | Path, made_by: str) -> str:
        return os.path.relpath(require_file(path, made_by), out.parent)

    classification_scores = read_json(args.classification_scores, "evaluate_classification")
    classification_methods = read_json(args.classification_methods, "evaluate_classification")
    rl_scores, rl_methods = read_json(args.rl_scores, "evaluate_rl"), read_json(args.rl_methods, "evaluate_rl")
    figures = {caption: link(Path(args.figures_dir) / name, "make_figures")
               for caption, name in sinusoid.figure_files(params.sinusoid).items()}  # fmt: skip
    sections = [
        sinusoid.section(
            params.sinusoid,
            read_json(args.scores, "evaluate_fewshot"),
            pd.read_csv(require_file(args.curves, "evaluate_fewshot")),
            read_json(args.methods, "evaluate_fewshot"),
            read_json(args.paired, "evaluate_fewshot"),
            pd.read_csv(require_file(args.long_curves, "evaluate_fewshot")),
            read_json(args.unrelated, "evaluate_fewshot"),
            figures,
            read_json(args.mixed_scores, "evaluate_mixed"),
            read_json(args.mixed_paired, "evaluate_mixed"),
        ),
        classification.section(
            classification_scores,
            classification_methods,
            link(args.classification_figure, "make_classification_figures"),
        ),  # fmt: skip
        rl.section(rl_scores, rl_methods, link(args.rl_figure, "make_rl_figures")),
    ]
    text = document(profile=params.pipeline.profile, revision=stage.source_revision(),
                    device=compute.recorded(params.pipeline.compute),
                    status=status(params, args, rl_scores, rl_methods, classification_scores, classification_methods),
                    sections=sections, params_text=Path(args.params).read_text())  # fmt: skip
    write_text(out, text)
    stage.wrote(out)


if __name__ == "__main__":
    sinusoid_inputs = ("scores", "curves", "methods", "paired", "long_curves", "unrelated", "figures_dir",
                       "mixed_scores", "mixed_paired")  # fmt: skip
    other_inputs = ("classification_scores", "classification_methods", "classification_figure", "rl_scores",
                    "rl_methods", "rl_figure", "stage_times")  # fmt: skip
    paths = (*sinusoid_inputs, *other_inputs, "out")
    stage.main(run, __doc__, all_params.load, *paths, on_device=False)  # records compute; needs no GPU
