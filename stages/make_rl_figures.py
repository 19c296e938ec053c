"""Stage make_rl_figures: average return vs policy-gradient steps on the test tasks, per family."""

from reml.core import stage
from reml.core.figures import read_tables, save_png
from reml.core.io import write_text
from reml.core.plots import long_table
from reml.families.rl import config
from reml.families.rl.figures import plot_columns, returns_figure


def run(args, params: config.RLParams) -> None:
    curves, methods = read_tables(args.curves, args.methods, "evaluate_rl")
    save_png(returns_figure(curves, methods), args.out, params.dpi)
    write_text(args.plots_out, long_table(curves, plot_columns(methods)).to_csv(index=False))
    stage.wrote(args.out, args.plots_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "curves", "methods", "out", "plots_out", on_device=False)
