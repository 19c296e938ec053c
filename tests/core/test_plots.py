"""The long tables and templates of `dvc plots`: one colour per method as in the PNGs, diverged points kept."""

import json
import math

import pandas as pd
from matplotlib.colors import to_hex

from reml.core.figures import METHOD_ORDER, method_colors
from reml.core.plots import long_table
from tests.helpers import REPO


def test_templates_colour_every_method_as_the_figures_do():
    colors = method_colors(METHOD_ORDER)
    for name in ("ci_band", "ci_band_log"):
        template = json.loads((REPO / ".dvc" / "plots" / f"{name}.json").read_text())
        scale = template["spec"]["encoding"]["color"]["scale"]
        assert scale["domain"] == list(METHOD_ORDER)
        assert scale["range"] == [to_hex(colors[m]) for m in METHOD_ORDER]


def test_long_table_keeps_diverged_points_and_the_settings_order():
    wide = pd.DataFrame({"step": [0, 1], "maml_k10": [2.0, math.inf], "maml_k10_ci95": [0.5, math.nan],
                         "maml_k5": [3.0, 1.0], "maml_k5_ci95": [0.1, 0.2]})  # fmt: skip
    table = long_table(
        wide, [("K = 10", "maml", "maml_k10", "maml_k10_ci95"), ("K = 5", "maml", "maml_k5", "maml_k5_ci95")]
    )
    assert list(table.order) == [0, 0, 1, 1]
    assert list(table.diverged) == [False, True, False, False]
    assert table.loc[0, ["mean", "low", "high"]].tolist() == [2.0, 1.5, 2.5]
    assert table.loc[1, ["mean", "low", "high"]].isna().all()
