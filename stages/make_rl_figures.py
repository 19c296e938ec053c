"""Stage make_rl_figures: average return vs policy-gradient steps on the test tasks, per family."""

import json

import pandas as pd

from reml import stage
from reml.figures import rl_curves, save_png
from reml.io import require_file
from reml.reference import FINN_RL


def run(args, params):
    curves = pd.read_csv(require_file(args.curves, "evaluate_rl"))
    info = json.loads(require_file(args.methods, "evaluate_rl").read_text())
    families = list(info["families"])
    methods = list(info["families"][families[0]]["methods"])
    save_png(rl_curves(curves, families, methods, FINN_RL), args.out, params.make_figures.dpi)
    stage.wrote(args.out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--curves", required=True)
    p.add_argument("--methods", required=True)
    p.add_argument("--out", required=True)
    stage.main(run, p)
