"""The meta-RL section of the report, written from the metrics JSON and methods file only."""

from __future__ import annotations

from collections.abc import Sequence

from reml.core.compare import paired, relation
from reml.core.report import SHARED, StatusRow
from reml.families.rl.config import REML_VERSUS

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
MODEL_TIMESTEP = 0.01  # seconds per MuJoCo step in gymnasium's v5 HalfCheetah and Ant models
RLLAB_INTERVAL = {"cheetah": 0.01, "ant": 0.02}  # seconds per action in rllab, which Finn et al. ran


def environment(family: str, entry: dict) -> str:
    """The family's environment in words, with its control interval (MuJoCo families)."""
    text = ENVIRONMENTS[family]
    frame_skip = entry.get("frame_skip")
    if frame_skip is None:
        return text
    interval = frame_skip * MODEL_TIMESTEP
    rllab = RLLAB_INTERVAL[family.split("_")[0]]
    horizon = entry.get("horizon", 200)
    return (f"{text}, frame_skip {frame_skip}: {interval:g} s per action, {horizon * interval:g} s per episode "
            f"(rllab, Finn's: {rllab:g} s, {horizon * rllab:g} s)")  # fmt: skip


def _cell(mean: float | None, ci: float | None) -> str:
    return "not finite" if mean is None or ci is None else f"{mean:.2f} ± {ci:.2f}"


def score_cell(leaves: dict, step: int, n_tasks: int) -> str:
    """mean ± 95% CI over tasks, then the sd of the runs' means where there are several; where some
    task's return is not finite, their count and the median (a diverged task the worst) instead."""
    diverged = leaves.get(f"diverged_step{step}", 0)
    if diverged:
        median = leaves.get(f"median_step{step}")
        return f"diverged on {diverged}/{n_tasks}, median {'-inf' if median is None else f'{median:.2f}'}"
    text = _cell(leaves[f"return_step{step}"], leaves[f"ci95_step{step}"])
    sd = leaves.get(f"sd_seeds_step{step}")
    return f"{text} (sd {sd:.2f})" if sd is not None and text != "not finite" else text


def _paired(diff: dict, step: int, other: str) -> str:
    """A paired difference (same tasks, same noise) after ``step`` steps, in the reports' one vocabulary:
    higher or lower than ``other`` only when its 95% CI excludes 0."""
    return paired((diff["mean"][step], diff["ci95"][step]), other)


def _budget(info: dict) -> str:
    """Each trained method's training budget in its own units (one run)."""
    parts = []
    for method, entry in info.items():
        t = entry["training"]
        if "meta_batch" in t:
            its = f"{t['iterations']} meta-iteration{'s' if t['iterations'] != 1 else ''}"
            parts.append(f"{method} {its} × {t['meta_batch']} tasks × {t['rollouts']} episodes before and after "
                         "the inner step")  # fmt: skip
        elif "timesteps" in t:
            parts.append(f"{method} PPO {t['timesteps']:,} steps")
        elif "probe_rollouts" in entry:
            parts.append(f"{method} {t['reml_episodes']} compositions × {2 + t['inner_steps']} × {t['rollouts']} "
                         "episodes (probe, inner step, score)")  # fmt: skip
    return "; ".join(parts)


def _paired_cell(diff: dict, step: int, other: str) -> str:
    text = _paired(diff, step, other)
    n = diff.get("diverged", [0] * (step + 1))[step]
    return f"{text} ({n} tasks diverged)" if n else text


def _tally(diff: dict, steps: int) -> dict[str, int]:
    """How often (over steps 0..steps) the REML row is higher, level or lower than the other, paired."""
    counts = {"higher": 0, "level": 0, "lower": 0, "not comparable": 0}
    for s in range(steps + 1):
        rel = relation((diff["mean"][s], diff["ci95"][s]), (0.0, 0.0))
        counts[rel or "not comparable"] += 1
    return counts


def _random_verdict(counts: dict[str, int], steps: int) -> str:
    if counts["not comparable"]:
        return (f"not answered: the difference is not finite after {counts['not comparable']} of {steps + 1} "
                "steps (diverged tasks)")  # fmt: skip
    if counts["higher"] and not counts["lower"]:
        return f"yes: higher after {counts['higher']} of {steps + 1} steps, never lower"
    if counts["lower"] and not counts["higher"]:
        return f"no: lower after {counts['lower']} of {steps + 1} steps, never higher"
    if not counts["higher"] and not counts["lower"]:
        return f"no measurable difference: level after all {steps + 1} steps"
    return f"mixed: higher after {counts['higher']}, lower after {counts['lower']} of {steps + 1} steps"


def reml_comparisons(family: str, entry: dict, steps: int) -> list[str]:
    """The REML agent minus each method it is measured against, task by task, after every step, a tally
    per comparison, and whether the agent beats random composition, in words from the numbers."""
    paired_info, info = entry["paired"], entry["methods"]
    agent = next((m for m, e in info.items() if "probe_rollouts" in e), None)
    others = [o for o in REML_VERSUS if agent and f"{agent} - {o}" in paired_info]
    if not others:
        return []
    head = " | ".join(f"{s} step{'s' if s != 1 else ''}" for s in range(steps + 1))
    lines = [f"#### {family}: {agent} minus each method, task by task", "",
             f"| other | runs | training tasks | env steps | {head} | tally |",
             "|---|---|---|---|" + "---|" * (steps + 2)]  # fmt: skip
    for other in others:
        diff, o = paired_info[f"{agent} - {other}"], info[other]
        tally = ", ".join(f"{w} {n}" for w, n in _tally(diff, steps).items() if n)
        cells = " | ".join(_paired_cell(diff, s, other) for s in range(steps + 1))
        lines.append(f"| {other} | {o['runs']} | {o['tasks']:,} | {o['env_steps']:,} | {cells} | {tally} |")
    lines.append("")
    if f"{agent} - reml_random" in paired_info:
        verdict = _random_verdict(_tally(paired_info[f"{agent} - reml_random"], steps), steps)
        lines += [f"Does {agent}'s choice of layers beat uniformly random valid compositions of the same pools "
                  f"on {family}? {verdict}.", ""]  # fmt: skip
    return lines


def _reml_lines(info: dict) -> list[str]:
    lines = []
    for method, entry in info.items():
        if entry.get("unadapted"):
            lines.append(f"`{method}` is not fine-tuned (Finn's oracle, `n_itr=1`): its 0-step return in every "
                         f"column; `{method}_finetuned` is that policy fine-tuned like the other rows.")  # fmt: skip
        if "probe_rollouts" in entry:
            n = entry["distinct_policies"]
            which = ", ".join(
                f"layers {'-'.join(map(str, c['layers']))} for {c['tasks']} tasks (mean task "
                f"{', '.join(f'{v:g}' for v in c['mean_task'])})"
                for c in entry["compositions"]
            )
            line = (f"{method} composed {n} distinct polic{'y' if n == 1 else 'ies'} for the test tasks: "
                    f"{which}; {entry['invalid_rate']:.0%} of its choices remapped. Each was composed from "
                    f"{entry['probe_rollouts']} probe episodes of the task with random actions")  # fmt: skip
            if entry.get("aligned_by") == "episodes":
                line += (": aligned by the episodes seen, its column 0 is that probe batch's return and column c "
                         "the composed policy after c - 1 steps, so no column has seen more episodes of the task "
                         f"than the others' ({entry['probe_rollouts']} + (c - 1) × {entry['test_rollouts']} "
                         f"against c × {entry['test_rollouts']}).")  # fmt: skip
            else:
                line += (f", run before its 0-step row (aligned by steps: the others' 1-step row has seen "
                         f"{entry['test_rollouts']}).")  # fmt: skip
            if n == 1:
                line += " One composition for every task: the agent ignored the task, so this row is the pool's "
                line += "jointly trained policy, not a fast learner."
            if "per_run" in entry:
                counts = ", ".join(str(run["distinct_policies"]) for run in entry["per_run"])
                line += f" (The first of {len(entry['per_run'])} runs; distinct policies per run: {counts}.)"
            lines.append(line)
    return lines


def _steps_text(methods_info: dict) -> str:
    """How the test step sizes were set, in words."""
    sizes = ", ".join(f"{s:g}" for s in methods_info["step_sizes"])
    scales = methods_info.get("step_scales", [1.0])
    if len(scales) == 1:
        return f"step sizes {sizes} × {scales[0]:g} for every method"
    return (f"step sizes {sizes} × a scale chosen per method from {', '.join(f'{v:g}' for v in scales)} on "
            f"{methods_info['n_val']} validation tasks per family (their own stream, never the test tasks: the "
            "highest mean return over steps 1..S; `step sizes` column)")  # fmt: skip


def _step_sizes(entry: dict) -> str:
    sizes = entry.get("step_sizes")
    return "–" if sizes is None else ", ".join(f"{v:g}" for v in sizes)


# Finn et al.'s own settings where they differ from a plain reading of the paper (cbfinn/maml_rl; protocol.md)
FINN_TEST_STEPS = ("0.1 maml, 0.2 pretrained, 1.0 random init (cheetah_dir, ant); 0.02 pretrained (cheetah_vel); "
                   "navigation 0.5 then 0.25 for the reported model")  # fmt: skip
FINN_MAML_TRPO = {
    "": "up to 500 iterations, KL 0.01, α 0.1; the best iterate seen in training",
    "navigation2d": "up to 500 iterations, KL 0.01, α 0.1 (the reported model: α 0.5); the best iterate in training",
    "cheetah_dir": "the table's checkpoint: 100 iterations, KL 0.02, α 0.1; the best iterate seen in training",
}


def protocol_table(methods_info: dict) -> list[str]:
    """Where this run's meta-RL protocol differs from Finn et al.'s (paper and code), each row with the
    param that sets it (docs/differences.md explains them)."""
    families = methods_info["families"]
    rows = [("simulator", "gymnasium v5 bodies, MuJoCo 4 (rewards recomputed as Finn's)", "rllab, MuJoCo 1.31",
             "– (fixed)")]  # fmt: skip
    for family, entry in families.items():
        if entry.get("frame_skip") is not None:
            interval = entry["frame_skip"] * MODEL_TIMESTEP
            rllab = RLLAB_INTERVAL[family.split("_")[0]]
            rows.append((f"{family}: control interval", f"{interval:g} s per action (frame_skip {entry['frame_skip']})",
                         f"{rllab:g} s", f"rl.families.{family}.frame_skip"))  # fmt: skip
    tuned = len(methods_info.get("step_scales", [1.0])) > 1
    chosen = "; ".join(
        f"{family}: "
        + ", ".join(
            f"{m} ×{e['step_scale']:g}"
            for m, e in entry["methods"].items()
            if "step_scale" in e and not e.get("unadapted")
        )  # fmt: skip
        for family, entry in families.items()
    )
    rows.append(("test step sizes", (f"{_steps_text(methods_info)}: {chosen}" if tuned else _steps_text(methods_info)),
                 FINN_TEST_STEPS, "rl.evaluate.step_sizes, step_scales, n_val"))  # fmt: skip
    oracle = methods_info.get("oracle", "finetuned")
    rows.append(("oracle row", "not fine-tuned (0-step return; `oracle_finetuned` beside it)" if oracle == "unadapted"
                 else "fine-tuned like every method", "not fine-tuned (n_itr=1)", "rl.evaluate.oracle"))  # fmt: skip
    for family, entry in families.items():
        t = entry["methods"].get("maml_trpo", {}).get("training", {})
        if t:
            which = "the last"
            if t.get("select_iterate") == "validation":
                which = f"best on {t['validation_tasks']} validation tasks: iteration {t['selected_iteration']}"
            ours = f"{t['iterations']} iterations, KL {t['max_kl']:g}, α {t['inner_lr']:g}; checkpoint {which}"
            params = f"rl.families.{family}.iterations, max_kl; rl.maml_trpo.inner_lr, select_iterate"
            rows.append((f"{family}: maml_trpo", ours, FINN_MAML_TRPO.get(family, FINN_MAML_TRPO[""]), params))
    alignment = methods_info.get("reml_alignment", "steps")
    rows.append(("REML's rows", "aligned by the episodes of the task seen (probe batch in column 0)" if alignment ==
                 "episodes" else "aligned by steps (its probe an extra batch)", "– (not in Finn et al.)",
                 "rl.evaluate.reml_alignment"))  # fmt: skip
    lines = ["### The protocol against Finn et al.'s", "",
             "Where this run differs from what Finn et al. ran (paper and cbfinn/maml_rl), and the param that sets "
             'each (docs/rl.md, "Differences from Finn\'s set-up").', "",
             "| setting | this run | Finn et al. | param |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return [*lines, ""]


def section(metrics: dict, methods_info: dict, figure: str) -> str:
    steps = len(methods_info["step_sizes"])
    sizes = _steps_text(methods_info)
    lines = [
        "## Meta-RL (Finn et al. 2017, Sec. 5.3)",
        "",
        f"{methods_info['n_test']} held-out test tasks per family, the same for every method (a task stream no "
        f"method trains on), and the same action noise. On each task: episodes with the current policy, their "
        f"mean return, then one REINFORCE step (linear feature baseline, γ = {methods_info['gamma']}) on exactly "
        f"those episodes; {sizes}. Average return after 0..{steps} steps, mean ± 95% CI over tasks. "
        "`scratch` is a seeded random policy; `pretrained` was trained with PPO on tasks drawn from the whole "
        "distribution; `oracle` also sees the task parameters; `maml_trpo` is MAML with a TRPO meta-update; "
        "`reml_*` is REML: its agent composes each task's policy from a pool of policy layers "
        "(input, hidden, output), from the task's first (probe) episodes only; `reml_random` gives each task a "
        "uniformly random valid composition of the same pool (drawn without the task) and `reml_fixed` the one "
        "composition the agent chose most often on validation tasks (not the test tasks), so they differ from "
        "the agent's row only in the choice of layers. `pretrained_matched` is PPO for REML's number of training "
        "tasks, as full-horizon episodes (one task each: REML's compositions × H environment steps); "
        "`maml_trpo_matched` is MAML-TRPO on REML's number of training tasks (compositions / meta-batch "
        "meta-iterations). A method with several runs (replicates, each its own seed) is scored per task as the "
        "mean over its runs: mean ± 95% CI over tasks, (sd of the runs' means); a cell with tasks whose return "
        "is not finite gives their count and the median instead. `training tasks` and `env steps` are per run "
        "(env steps at most: episodes that end early use fewer; PPO's tasks are its full-horizon episodes, so at "
        "least that many).",
        "",
        *protocol_table(methods_info),
    ]
    for family, results in metrics.items():
        entry = methods_info["families"][family]
        info = entry["methods"]
        rollouts = next(iter(info.values()))["test_rollouts"]
        lines += [f"#### {family}", "", f"{environment(family, entry)}; {rollouts} episodes per task and step. "
                  f"Training: {_budget(info)}.", "",  # fmt: skip
                  "| method | runs | training tasks | env steps | step sizes | "
                  + " | ".join(f"{s} step{'s' if s != 1 else ''}" for s in range(steps + 1)) + " |",
                  "|---|---|---|---|---|" + "---|" * (steps + 1)]  # fmt: skip
        for method, leaves in results.items():
            cells = " | ".join(score_cell(leaves, s, methods_info["n_test"]) for s in range(steps + 1))
            m = info[method]
            lines.append(f"| {method} | {m.get('runs', 1)} | {m.get('tasks', 0):,} | {m.get('env_steps', 0):,} | "
                         f"{'–' if m.get('unadapted') else _step_sizes(m)} | {cells} |")  # fmt: skip
        if family in FINN_RL:
            published = [f"*{v:.2f}*" for v in FINN_RL[family][: steps + 1]]
            lines.append(f"| *maml, {FINN_RL_CITATION}* | | | | | " + " | ".join(published) + " |")
        lines += ["", *_reml_lines(info), ""]
    lines += [
        f"![Average return vs policy-gradient steps on the test tasks, mean and 95% CI]({figure})",
        "",
        "Finn et al.'s rows are their MAML (rllab, MuJoCo 1.31, up to 500 meta-iterations); ours run gymnasium's "
        "v5 environments on a current MuJoCo with the budgets above, so they are shown for scale. Only the "
        "`_matched` rows share REML's number of training tasks; compare every row's tasks and environment steps.",
        "",
        "### REML against its ablations and the baselines, task by task",
        "",
        "The REML agent's row minus each other row on the same test tasks with the same action noise, mean ± "
        "95% CI over tasks of the paired difference in return; higher or lower means that CI excludes 0. The "
        "tally counts the steps. The other row's runs, training tasks and environment steps are beside it.",
        "",
    ]
    for family in metrics:
        lines += reml_comparisons(family, methods_info["families"][family], steps)
    lines += [
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


# --------------------------------------------------------------------------- the report's status table

ALL_FAMILIES = "meta-RL (every family)"  # the row of the stages every family shares: scoring, figures
SHARED_STAGES = ("evaluate_rl", "make_rl_figures")
UNTRAINED = {"scratch": "in the scoring (no training)", "oracle_finetuned": "in oracle's runs"}


def stage_owner(stage: str, reml_agent: str) -> tuple[str, str] | None:
    """The status-table row (family, method) a meta-RL stage belongs to; None for another family's."""
    base, _, item = stage.partition("@")
    if base in SHARED_STAGES:
        return ALL_FAMILIES, SHARED
    if base in ("train_maml_trpo", "train_rl_ppo"):
        method, family, _ = item.split("-")
        return family, method
    if base == "train_reml_rl":
        return item.split("-")[0], reml_agent
    return None


def status_rows(metrics: dict, methods_info: dict, families: Sequence[str]) -> tuple[list[StatusRow], str]:
    """The meta-RL rows of the report's status table (every family of ``families``; those the profile
    does not run say so) and what their headline cell is: the average return after 1 and 3 steps (Finn's
    Tables 4-5, MAML)."""
    steps = len(methods_info["step_sizes"])
    shown = [s for s in (1, steps) if s <= steps]
    rows = []
    for family in families:
        if family not in metrics:
            rows.append(StatusRow(family, "every method", 0, "– (not in `rl.run`)"))
            continue
        info = methods_info["families"][family]["methods"]
        for method, leaves in metrics[family].items():
            m = info[method]
            cells = [leaves.get(f"return_step{s}") for s in shown]
            ours = " / ".join("diverged" if v is None or leaves.get(f"diverged_step{s}", 0) else f"{v:.2f}"
                              for s, v in zip(shown, cells, strict=True))  # fmt: skip
            published = FINN_RL.get(family) if method == "maml_trpo" else None
            untrained = UNTRAINED.get(method, "in the REML runs")
            rows.append(StatusRow(family, method, m.get("runs", 1),
                                  f"{m.get('tasks', 0):,} tasks, {m.get('env_steps', 0):,} env steps", ours,
                                  " / ".join(f"{published[s]:.2f}" for s in shown) if published else "",
                                  untrained))  # fmt: skip
    rows.append(StatusRow(ALL_FAMILIES, SHARED, 1, f"{methods_info['n_test']} test tasks per family"))
    return rows, f"average return after {' / '.join(map(str, shown))} steps"
