"""The sinusoid figures that draw cells which may have diverged (reml/families/sinusoid/figures.py)."""

import math

import matplotlib

matplotlib.use("Agg")

from matplotlib.colors import to_hex  # noqa: E402

from reml.core.figures import method_colors  # noqa: E402
from reml.families.sinusoid.figures import unrelated_tasks  # noqa: E402


def cell(start: float, end: float | None) -> dict:
    return {"k10": {"mse_step0": start, "ci95_step0": 0.1, "mse_step10": end, "ci95_step10": 0.1}}


def test_a_huge_finite_mean_is_drawn_as_diverged_and_every_method_keeps_its_legend_colour():
    """A finite mean of 1e26 (a fine-tune that blew up) would stretch the log axis over 26 decades and
    flatten every other bar: like inf it is hatched at the top. A method whose every cell diverged still
    has its own colour in the legend (an empty bar call used to give it the theme's default blue)."""
    scores = {
        "sinusoid": {"scratch": cell(4.0, 3.8), "maml": cell(3.0, 4e26), "reml_x": cell(5.0, None)},
        "lines": {"scratch": cell(1.0, 0.4), "maml": cell(1.0, 0.6), "reml_x": cell(2.0, math.inf)},
    }
    fig = unrelated_tasks(scores, 10, 10)
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert top < 1e3 and bottom < 0.4  # 3 x the highest bar shown, half the lowest
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 3  # maml on sinusoid, reml_x on both
    legend = fig.legends[0]
    colors = method_colors(["scratch", "maml", "reml_x"])
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=False):
        if text.get_text() in colors:
            assert to_hex(handle.get_facecolor()) == to_hex(colors[text.get_text()]), text.get_text()
    assert {t.get_text() for t in legend.get_texts()} >= {"scratch", "maml", "reml_x"}


def test_the_reml_training_legend_fits_inside_the_figure():
    """Seven variants' long names: the legend used six columns and was cut at both edges of the PNG."""
    import pandas as pd

    from reml.families.sinusoid.figures import reml_training

    variants = ["thesis", "meta_gradient", "relative", "sgd_inner", "slot_pools", "sgd_slot_pools", "candidate_scores"]
    log = pd.DataFrame({"timesteps": [500, 1000], "built_loss": [4.0, 3.0], "episode_reward": [0.3, 0.4],
                        "invalid_rate": [0.0, 0.0]})  # fmt: skip
    fig = reml_training({f"reml_maskable-support-{v}-{s}": log for v in variants for s in (0, 1)})
    fig.canvas.draw()
    box, width = fig.legends[0].get_window_extent(), fig.bbox.width
    assert box.x0 >= 0 and box.x1 <= width, (box, width)
    assert len(fig.legends[0].get_texts()) == len(variants)
