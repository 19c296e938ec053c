"""Stage make_rl_figures: average return vs policy-gradient steps on the test tasks, per family."""

from reml.core import stage
from reml.core.figures import render_table, save_png
from reml.families.rl import config
from reml.families.rl.figures import returns_figure


def run(args, params: config.RLParams) -> None:
    save_png(render_table(returns_figure, args.curves, args.methods, "evaluate_rl"), args.out, params.dpi)
    stage.wrote(args.out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "curves", "methods", "out")
