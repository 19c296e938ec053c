"""Stage make_report: write reports/report.md from the committed metrics, curves and figures."""

import json
import os
from pathlib import Path

import pandas as pd
import torch

from reml import report, stage
from reml.io import require_file, write_text
from reml.report_classification import classification_section
from reml.report_rl import rl_section
from reml.tasks.families import UNRELATED_FAMILIES

CURVES_CAPTION = "Query MSE vs gradient steps, mean and 95% CI over test tasks (Finn et al. Fig. 3 style)"

META_CAPTION = (
    "Meta-training curves: query MSE of the training tasks after the inner loop "
    "(window means; 1 inner step for maml and fomaml, 5 for reptile)"
)

REML_CAPTION = (
    "REML training: query MSE of the network built and trained in each episode, episode return, and the "
    "rate of invalid choices that had to be remapped (PPO and RecurrentPPO; MaskablePPO never makes one)"
)
LONG_SETUP = "{steps} {optimizer} steps (lr {lr}) on K = {k} support points of the test tasks, one step size for all"
LONG_CAPTION = "Loss per step over a longer fine-tune (the REML thesis's figure): " + LONG_SETUP + ", mean and 95% CI"
UNRELATED_CAPTION = (
    "Research question 3: query MSE after {steps} steps (K = {k}) on task families never seen in meta-training, "
    "mean and 95% CI (log scale)"
)


def run(args, params):
    curves = pd.read_csv(require_file(args.curves, "evaluate_fewshot"))
    methods_info = json.loads(require_file(args.methods, "evaluate_fewshot").read_text())
    long_curves = pd.read_csv(require_file(args.long_curves, "evaluate_fewshot"))
    unrelated = json.loads(require_file(args.unrelated, "evaluate_fewshot").read_text())
    cfg = params.evaluate_fewshot
    long = cfg.long_finetune
    long_args = {"k": long.k, "steps": long.steps, "optimizer": long.optimizer.upper(), "lr": f"{long.lr:g}"}
    methods = list(cfg.methods)
    out = Path(args.out)
    captions = {
        CURVES_CAPTION: "curves.png",
        **{
            f"Example fits on test tasks, K = {k} (Finn et al. Fig. 2 style)": f"examples_k{k}.png"
            for k in params.adaptation.shots
        },
        "Training MSE of the jointly trained baselines": "training.png",
        META_CAPTION: "meta_training.png",
        REML_CAPTION: "reml_training.png",
        LONG_CAPTION.format(**long_args): "long_finetune.png",
        UNRELATED_CAPTION.format(k=cfg.unrelated_k, steps=params.adaptation.steps): "unrelated.png",
    }
    figures = {}
    for caption, name in captions.items():
        path = require_file(Path(args.figures_dir) / name, "make_figures")
        figures[caption] = os.path.relpath(path, out.parent)
    setup = report.SinusoidSetup(
        n_test=params.generate_tasks.n_test,
        n_query=params.generate_tasks.n_query,
        shots=params.adaptation.shots,
        steps=params.adaptation.steps,
        optimizer=params.adaptation.optimizer,
    )
    text = report.render(
        profile=params.profile,
        revision=stage.source_revision(),
        torch_version=torch.__version__,
        setup=setup,
        methods=methods,
        step_sizes={m: methods_info[m]["step_sizes"] for m in methods},
        curves=curves,
        long_curves=long_curves,
        long_setup=LONG_SETUP.format(**long_args),
        long_k=long.k,
        long_steps=long.steps,
        unrelated=unrelated,
        unrelated_k=cfg.unrelated_k,
        families={name: f.description for name, f in UNRELATED_FAMILIES.items()},
        figures=figures,
        params_text=Path(args.params).read_text(),
        extra_sections=[
            classification_section(
                json.loads(require_file(args.classification_metrics, "evaluate_classification").read_text()),
                json.loads(require_file(args.classification_methods, "evaluate_classification").read_text()),
                os.path.relpath(require_file(args.classification_figure, "make_classification_figures"), out.parent),
                steps=json.loads(Path(args.classification_methods).read_text())["steps"],
            ),
            rl_section(
                json.loads(require_file(args.rl_metrics, "evaluate_rl").read_text()),
                json.loads(require_file(args.rl_methods, "evaluate_rl").read_text()),
                os.path.relpath(require_file(args.rl_figure, "make_rl_figures"), out.parent),
            ),
        ],
    )
    write_text(out, text)
    stage.wrote(out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--curves", required=True)
    p.add_argument("--methods", required=True)
    p.add_argument("--long-curves", required=True)
    p.add_argument("--unrelated", required=True)
    p.add_argument("--figures-dir", required=True)
    p.add_argument("--classification-metrics", required=True)
    p.add_argument("--classification-methods", required=True)
    p.add_argument("--classification-figure", required=True)
    p.add_argument("--rl-metrics", required=True)
    p.add_argument("--rl-methods", required=True)
    p.add_argument("--rl-figure", required=True)
    p.add_argument("--out", required=True)
    stage.main(run, p)
