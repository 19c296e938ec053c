"""The meta-RL section of the report, written from the metrics JSON and methods file only."""

from __future__ import annotations

from reml.core.compare import paired

# Finn et al. 2017, appendix Tables 4 and 5: average return of MAML after 0 / 1 / 2 / 3 policy-gradient
# steps (rllab, MuJoCo 1.31; 2D navigation with 40 rollouts per step at test, HalfCheetah direction with
# 20). Other families were published as curves only (protocol.md).
FINN_RL: dict[str, tuple[float, ...]] = {
    "navigation2d": (-40.41, -11.68, -3.33, -3.23),
    "cheetah_dir": (-50.69, 293.19, 313.48, 315.65),
}
FINN_RL_CITATION = "Finn et al. 2017, Tables 4-5"

ENVIRONMENTS = {
    "navigation2d": "2D navigation (point mass, goal ~ U[-0.5, 0.5]², H = 100)",
    "cheetah_vel": "HalfCheetah-v5, goal velocity ~ U[0, 2], H = 200",
    "cheetah_dir": "HalfCheetah-v5, direction ±1, H = 200",
    "ant_vel": "Ant-v5, goal velocity ~ U[0, 3], H = 200",
    "ant_dir": "Ant-v5, direction ±1, H = 200",
}


def _cell(mean: float | None, ci: float | None) -> str:
    return "not finite" if mean is None or ci is None else f"{mean:.2f} ± {ci:.2f}"


def _paired(diff: dict, step: int, other: str) -> str:
    """A paired difference (same tasks, same noise) after ``step`` steps, in the reports' one vocabulary:
    higher or lower than ``other`` only when its 95% CI excludes 0."""
    return paired((diff["mean"][step], diff["ci95"][step]), other)


def _budget(info: dict, horizon: int) -> str:
    """Each trained method's training budget, with the environment steps it used (at most: episodes
    that end early use fewer)."""
    maml = info["maml_trpo"]["training"]
    ppo = info["pretrained"]["training"]
    maml_steps = maml["iterations"] * maml["meta_batch"] * maml["rollouts"] * 2 * horizon
    parts = [
        f"MAML-TRPO {maml['iterations']} meta-iteration{'s' if maml['iterations'] != 1 else ''} × "
        f"{maml['meta_batch']} tasks × {maml['rollouts']} "
        f"episodes before and after the inner step ({maml_steps:,} environment steps)",
        f"PPO {ppo['timesteps']:,} steps for pretrained and oracle each",
    ]
    for method, entry in info.items():
        if "probe_rollouts" in entry:
            r = entry["training"]
            steps = r["reml_episodes"] * (2 + r["inner_steps"]) * r["rollouts"] * horizon
            parts.append(f"{method} {r['reml_episodes']} compositions × {2 + r['inner_steps']} × {r['rollouts']} "
                         f"episodes (probe, inner step, score; {steps:,} environment steps)")  # fmt: skip
    return "; ".join(parts)


def _reml_lines(info: dict) -> list[str]:
    lines = []
    for method, entry in info.items():
        if "probe_rollouts" in entry:
            n = entry["distinct_policies"]
            which = ", ".join(
                f"layers {'-'.join(map(str, c['layers']))} for {c['tasks']} tasks (mean task "
                f"{', '.join(f'{v:g}' for v in c['mean_task'])})"
                for c in entry["compositions"]
            )
            line = (f"{method} composed {n} distinct polic{'y' if n == 1 else 'ies'} for the test tasks: "
                    f"{which}; {entry['invalid_rate']:.0%} of its choices remapped. Each was composed from "
                    f"{entry['probe_rollouts']} probe episodes of the task with random actions, run before its "
                    f"0-step row (the others' 1-step row has seen {entry['test_rollouts']}).")  # fmt: skip
            if n == 1:
                line += " One composition for every task: the agent ignored the task, so this row is the pool's "
                line += "jointly trained policy, not a fast learner."
            lines.append(line)
    return lines


def section(metrics: dict, methods_info: dict, figure: str) -> str:
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
        "distribution; `oracle` also sees the task parameters; `maml_trpo` is MAML with a TRPO meta-update; "
        "`reml_*` is REML: its agent composes each task's policy from a pool of policy layers "
        "(input, hidden, output), from the task's first (probe) episodes only.",
        "",
    ]
    for family, results in metrics.items():
        entry = methods_info["families"][family]
        info = entry["methods"]
        rollouts = next(iter(info.values()))["test_rollouts"]
        lines += [f"#### {family}", "", f"{ENVIRONMENTS[family]}; {rollouts} episodes per task and step. Training: "
                  f"{_budget(info, entry['horizon'])}.", "",  # fmt: skip
                  "| method | " + " | ".join(f"{s} step{'s' if s != 1 else ''}" for s in range(steps + 1)) + " |",
                  "|---|" + "---|" * (steps + 1)]  # fmt: skip
        for method, leaves in results.items():
            cells = [_cell(leaves[f"return_step{s}"], leaves[f"ci95_step{s}"]) for s in range(steps + 1)]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        if family in FINN_RL:
            published = [f"*{v:.2f}*" for v in FINN_RL[family][: steps + 1]]
            lines.append(f"| *maml, {FINN_RL_CITATION}* | " + " | ".join(published) + " |")
        lines += ["", *_reml_lines(info), ""]
    lines += [
        f"![Average return vs policy-gradient steps on the test tasks, mean and 95% CI]({figure})",
        "",
        "Finn et al.'s rows are their MAML (rllab, MuJoCo 1.31, up to 500 meta-iterations); ours run gymnasium's "
        "v5 environments on a current MuJoCo with the budgets above, so they are shown for scale. The training "
        "budgets are not matched between methods: compare their environment steps above.",
        "",
        "### Against scratch and pretrained after one step, task by task",
        "",
        "Every method runs on the same test tasks with the same action noise, so each comparison is the mean "
        "over tasks of the paired difference in return, ± its 95% CI; higher or lower means that CI excludes 0, "
        "level with that it does not.",
        "",
    ]
    for family in metrics:
        paired = methods_info["families"][family]["paired"]
        methods = dict.fromkeys(key.split(" - ")[0] for key in paired)
        for method in methods:
            versus = [_paired(paired[f"{method} - {other}"], 1, other) for other in ("scratch", "pretrained")
                      if f"{method} - {other}" in paired]  # fmt: skip
            lines.append(f"- {family}, {method}: " + "; ".join(versus))
    lines.append("")
    return "\n".join(lines)
