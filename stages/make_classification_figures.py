"""Stage make_classification_figures: query accuracy vs SGD steps on the test episodes, per setting."""

import json

import pandas as pd

from reml import stage
from reml.figures import classification_curves, save_png
from reml.io import require_file


def run(args, params):
    curves = pd.read_csv(require_file(args.curves, "evaluate_classification"))
    info = json.loads(require_file(args.methods, "evaluate_classification").read_text())
    methods = list(info["methods"])
    settings = list(info["methods"][methods[0]])
    save_png(classification_curves(curves, methods, settings), args.out, params.make_figures.dpi)
    stage.wrote(args.out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--curves", required=True)
    p.add_argument("--methods", required=True)
    p.add_argument("--out", required=True)
    stage.main(run, p)
