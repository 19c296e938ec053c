"""Stage make_classification_figures: query accuracy vs SGD steps on the test episodes, per setting."""

from reml.core import stage
from reml.core.figures import read_tables, save_png
from reml.core.io import write_text
from reml.core.plots import long_table
from reml.families.classification import config
from reml.families.classification.figures import accuracy_figure, plot_columns


def run(args, params: config.ClassificationParams) -> None:
    curves, methods = read_tables(args.curves, args.methods, "evaluate_classification")
    save_png(accuracy_figure(curves, methods), args.out, params.dpi)
    write_text(args.plots_out, long_table(curves, plot_columns(methods)).to_csv(index=False))
    stage.wrote(args.out, args.plots_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "curves", "methods", "out", "plots_out", on_device=False)
