"""Stage make_classification_figures: query accuracy vs SGD steps on the test episodes, per setting."""

from reml.core import stage
from reml.core.figures import render_table, save_png
from reml.families.classification import config
from reml.families.classification.figures import accuracy_figure


def run(args, params: config.ClassificationParams) -> None:
    save_png(render_table(accuracy_figure, args.curves, args.methods, "evaluate_classification"), args.out, params.dpi)
    stage.wrote(args.out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "curves", "methods", "out")
