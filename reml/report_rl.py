"""The meta-RL section of the report, written from the metrics JSON and methods file only."""

from __future__ import annotations

from reml.compare import ci_versus
from reml.reference import FINN_RL, FINN_RL_CITATION

ENVIRONMENTS = {
    "navigation2d": "2D navigation (point mass, goal ~ U[-0.5, 0.5]², H = 100)",
    "cheetah_vel": "HalfCheetah-v5, goal velocity ~ U[0, 2], H = 200",
    "cheetah_dir": "HalfCheetah-v5, direction ±1, H = 200",
    "ant_vel": "Ant-v5, goal velocity ~ U[0, 3], H = 200",
    "ant_dir": "Ant-v5, direction ±1, H = 200",
}


def _cell(mean: float | None, ci: float | None) -> str:
    return "not finite" if mean is None or ci is None else f"{mean:.2f} ± {ci:.2f}"


def _versus(a: tuple, b: tuple, name: str) -> str:
    """Return ``a`` against ``b`` (each (mean, ci))."""
    return ci_versus(a, b, name, _cell, "a return is not finite")


def _budget(info: dict) -> str:
    maml = info["maml_trpo"]["training"]
    ppo = info["pretrained"]["training"]
    return (f"MAML-TRPO {maml['iterations']} meta-iterations × {maml['meta_batch']} tasks × {maml['rollouts']} "
            f"episodes; PPO {ppo['timesteps']:,} steps for pretrained and oracle each")  # fmt: skip


def rl_section(metrics: dict, methods_info: dict, figure: str) -> str:
    steps = len(methods_info["step_sizes"])
    sizes = ", ".join(f"{s:g}" for s in methods_info["step_sizes"])
    lines = [
        "## Meta-RL (Finn et al. 2017, Sec. 5.3)",
        "",
        f"{methods_info['n_test']} held-out test tasks per family, the same for every method (a task stream no "
        f"method trains on), and the same action noise. On each task: episodes with the current policy, their "
        f"mean return, then one REINFORCE step (linear feature baseline, γ = {methods_info['gamma']}) on exactly "
        f"those episodes; step sizes {sizes}. Average return after 0..{steps} steps, mean ± 95% CI over tasks. "
        "`scratch` is a seeded random policy; `pretrained` was trained with PPO on tasks drawn from the whole "
        "distribution; `oracle` also sees the task parameters; `maml_trpo` is MAML with a TRPO meta-update.",
        "",
    ]
    for family, results in metrics.items():
        info = methods_info["families"][family]
        rollouts = next(iter(info.values()))["test_rollouts"]
        lines += [f"#### {family}", "", f"{ENVIRONMENTS[family]}; {rollouts} episodes per task and step; "
                  f"{_budget(info)}.", "",  # fmt: skip
                  "| method | " + " | ".join(f"{s} step{'s' if s != 1 else ''}" for s in range(steps + 1)) + " |",
                  "|---|" + "---|" * (steps + 1)]  # fmt: skip
        for method, leaves in results.items():
            cells = [_cell(leaves[f"return_step{s}"], leaves[f"ci95_step{s}"]) for s in range(steps + 1)]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        if family in FINN_RL:
            published = [f"*{v:.2f}*" for v in FINN_RL[family][: steps + 1]]
            lines.append(f"| *maml, {FINN_RL_CITATION}* | " + " | ".join(published) + " |")
        lines.append("")
    lines += [
        f"![Average return vs policy-gradient steps on the test tasks, mean and 95% CI]({figure})",
        "",
        "Finn et al.'s rows are their MAML (rllab, MuJoCo 1.31, up to 500 meta-iterations); ours run gymnasium's "
        "v5 environments on a current MuJoCo with the budgets above, so they are shown for scale.",
        "",
        "### MAML-TRPO against scratch and pretrained after one step",
        "",
        "Above or below means the 95% CIs do not overlap.",
        "",
    ]
    for family, results in metrics.items():
        at = {m: (r["return_step1"], r["ci95_step1"]) for m, r in results.items()}
        maml = at["maml_trpo"]
        lines.append(f"- {family}: maml_trpo {_cell(*maml)}: {_versus(maml, at['scratch'], 'scratch')}; "
                     f"{_versus(maml, at['pretrained'], 'pretrained')}")  # fmt: skip
    lines.append("")
    return "\n".join(lines)
