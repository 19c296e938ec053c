"""Scoring every classification method on the same fixed test episodes (stage ``evaluate_classification``).

For each N-way K-shot setting: scratch (a fresh network), pretrained and pretrained_matched (their body
with a fresh zero head), MAML / FOMAML / Reptile / maml_matched (their (N, K) checkpoint), each REML agent
(one network composed per episode from its support images) and, on the reference agent's pools, the
ablations reml_random and reml_fixed, are fine-tuned with SGD on the support images for S steps by the
shared harness, and scored by query accuracy after every step. Step sizes: the meta-learners use their
inner α (as Finn et al.); scratch, pretrained and REML (and its ablations) use the step size tuned on
validation episodes.

Runs: every method but fomaml and reptile is scored once per replicate (``classification.replicates``);
a method's row is the per-episode mean over its runs, with ``sd_seeds_step<S>`` the spread of the runs'
means, ``diverged_step<S>`` and ``median_step<S>``. ``paired`` (in the methods file): the reference REML
row minus each compared method, episode by episode, mean and 95% CI. Writes
``<dataset>.<method>.<N>w<K>s.acc_step<S>`` / ``ci95_step<S>`` / ... and the curves.

Devices: :func:`evaluate` scores on ``device``. Checkpoints are loaded there; episodes and fresh
initialisations are drawn on the CPU (the same on every device) and moved there; the curves come back
on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from reml.core.curve import Curve, rounded, seed_spread
from reml.core.harness import Adaptation
from reml.core.headline import headline
from reml.core.nets import on_device
from reml.core.seeding import generator
from reml.families.classification.baselines import fresh_head
from reml.families.classification.checkpoint import head_slot, load_classifier
from reml.families.classification.config import SINGLE_RUN, ClassificationConfig, setting_name
from reml.families.classification.reml import ablations, load_composer
from reml.families.classification.tasks import ClassPool, fixed_episodes, score_episodes, tune_episodes
from reml.methods.config import META_LEARNERS


@dataclass(frozen=True)
class Evaluation:
    """Everything ``evaluate_classification`` writes."""

    metrics: dict[str, Any]  # <dataset>.<method>.<N>w<K>s.{acc,ci95}_step<S>
    curves: pd.DataFrame  # step, then <method>_<N>w<K>s and <method>_<N>w<K>s_ci95
    methods: dict[str, Any]  # step sizes and what each method recorded

    def headline(self) -> dict[str, Any]:
        """reports/metrics/classification/<N>w<K>s.json: each method's accuracy after the last step."""
        (by_method,) = self.metrics.values()
        settings = next(iter(by_method.values()))
        by_setting = {s: {m: by_s[s] for m, by_s in by_method.items()} for s in settings}
        return headline(by_setting, "acc", self.methods["steps"])


# Compared with the reference REML row episode by episode (reference minus each), where present.
PAIRED_WITH = ("reml_random", "reml_fixed", "scratch", "maml", "maml_matched", "pretrained", "pretrained_matched")


def pooled(curves: list[Curve]) -> tuple[Curve, torch.Tensor]:
    """The per-episode mean over runs, and the spread (sd) of the runs' means."""
    per_run = torch.stack([c.per_task for c in curves])
    return Curve(per_run.mean(dim=0)), seed_spread(per_run)


def leaves(curve: Curve, sd: torch.Tensor, n_runs: int) -> dict[str, float | int | None]:
    """A row's metrics leaves after every step: mean, CI, sd over runs (several runs), diverged, median."""
    out: dict[str, float | int | None] = {"n_runs": n_runs}
    for s in range(curve.steps + 1):
        out[f"acc_step{s}"] = rounded(curve.mean[s], 4)
        out[f"ci95_step{s}"] = rounded(curve.ci95[s], 4)
        if n_runs > 1:
            out[f"sd_seeds_step{s}"] = rounded(sd[s], 4)
        out[f"diverged_step{s}"] = int(curve.diverged[s])
        out[f"median_step{s}"] = rounded(curve.median[s], 4)
    return out


def paired(reference: Curve, other: Curve) -> dict[str, float | None]:
    """``reference`` minus ``other``, episode by episode: mean and 95% CI after every step."""
    diff = reference.minus(other)
    return {
        key: rounded(value[s], 4)
        for s in range(diff.steps + 1)
        for key, value in ((f"diff_step{s}", diff.mean), (f"ci95_step{s}", diff.ci95))
    }


def evaluate(
    cfg: ClassificationConfig, models: Path, val: ClassPool, test: ClassPool, *, device: torch.device
) -> Evaluation:
    """Score every method on the fixed test episodes of every setting, on ``device``; every checkpoint is
    loaded (and so checked) before any scoring."""
    pretrained = {
        (m, r): load_classifier(
            models / f"{m}-{r}.safetensors",
            f"train_pretrained_classifier@{m}-{r}",
            cfg.network(min(cfg.ways)),
            body_only=True,
            method=m,
            device=device,
        )
        for m in ("pretrained", "pretrained_matched")
        for r in cfg.runs(m)
    }
    checkpoints = {
        (m, n, k, r): load_classifier(
            models / f"{m}-{setting_name(n, k)}-{r}.safetensors",
            f"{train_stage(m)}@{m}-{n}-{k}" + (f"-{r}" if m not in SINGLE_RUN else ""),
            cfg.network(n),
            method=m,
            device=device,
        )
        for m in (*META_LEARNERS, "maml_matched")
        for n, k in cfg.settings()
        for r in cfg.runs(m)
    }
    agents = {
        (a, n, r): load_composer(models / "reml" / f"{a}-{n}w-{r}", f"train_reml_classifier@{a}-{r}-{n}", device=device)
        for a in cfg.reml.agents
        for n in cfg.ways
        for r in cfg.replicates
    }
    steps, grid = cfg.evaluate.steps, cfg.evaluate.lr_grid
    metrics, curves, methods, pairs = {}, {"step": list(range(steps + 1))}, {}, {}
    reference = cfg.reml.reference if cfg.reml.agents else None
    for n, k in cfg.settings():
        name = setting_name(n, k)
        episodes = fixed_episodes(test, cfg, n, k, cfg.evaluate.n_test, "test").to(device)
        val_eps = fixed_episodes(val, cfg, n, k, cfg.evaluate.n_val, "val").to(device)
        net = cfg.network(n)
        runs: dict[str, list[tuple[float, Curve, dict]]] = {}
        starts = {
            ("scratch", r): on_device(
                net.init(generator(cfg.evaluate.seed, f"cls/scratch/{name}" + (f"/{r}" if r else ""))), device
            )
            for r in cfg.replicates
        }
        starts |= {key: fresh_head(ckpt.params, head_slot(ckpt.params), n) for key, ckpt in pretrained.items()}
        for (method, _), start in starts.items():
            lr, by_lr = tune_episodes(net, start, val_eps, steps, grid)
            tuning = {"val_accuracy_by_step_size": {str(g): round(v, 4) for g, v in by_lr.items()}}
            curve = score_episodes(net, start, episodes, Adaptation("sgd", lr, steps))
            runs.setdefault(method, []).append((lr, curve, tuning))
        for method in (*META_LEARNERS, "maml_matched"):
            for r in cfg.runs(method):
                ckpt = checkpoints[(method, n, k, r)]
                lr = ckpt.step_sizes[k]
                curve = score_episodes(net, ckpt.params, episodes, Adaptation("sgd", lr, steps))
                runs.setdefault(method, []).append((lr, curve, {}))
        for agent in cfg.reml.agents:
            for r in cfg.replicates:
                composer = agents[(agent, n, r)]
                lr = composer.step_sizes[k]
                curve = composer.score(episodes, Adaptation("sgd", lr, steps))
                runs.setdefault(agent, []).append(
                    (
                        lr,
                        curve,
                        {
                            "invalid_rate": round(composer.invalid_rates[k], 4),
                            "distinct_networks": composer.distinct_networks[k],
                        },
                    )
                )
                if agent == reference:
                    for ablation in ablations(composer, composer.info):
                        a_lr = ablation.step_sizes[k]
                        a_curve = ablation.score(episodes, Adaptation("sgd", a_lr, steps))
                        runs.setdefault(ablation.agent, []).append((a_lr, a_curve, {}))
        rows = {}
        for method, by_run in runs.items():
            curve, sd = pooled([c for _, c, _ in by_run])
            rows[method] = curve
            metrics.setdefault(method, {})[name] = leaves(curve, sd, len(by_run))
            curves[f"{method}_{name}"] = [round(float(v), 4) for v in curve.mean]
            curves[f"{method}_{name}_ci95"] = [round(float(v), 4) for v in curve.ci95]
            lrs = [lr for lr, _, _ in by_run]
            info = {
                "step_size": lrs[0] if len(by_run) == 1 else lrs,
                "runs": len(by_run),
                "budget": cfg.budget(method, n, k),
            }
            extras = [e for _, _, e in by_run if e]
            if extras and "invalid_rate" in extras[0]:
                info |= {
                    "invalid_rate": round(sum(e["invalid_rate"] for e in extras) / len(extras), 4),
                    "distinct_networks": [e["distinct_networks"] for e in extras],
                }
            elif len(extras) == 1:
                info |= extras[0]
            methods.setdefault(method, {})[name] = info
            print(
                f"{name} {method:18s} runs {len(by_run)} lr {lrs} acc "
                + " ".join(f"{float(v):.3f}" for v in curve.mean)
            )
        if reference in rows:
            pairs[name] = {m: paired(rows[reference], rows[m]) for m in PAIRED_WITH if m in rows}
    info = {
        "dataset": cfg.dataset,
        "n_test": cfg.evaluate.n_test,
        "steps": steps,
        "methods": methods,
        "reference": reference,
        "paired": pairs,
    }
    return Evaluation({cfg.dataset: metrics}, pd.DataFrame(curves), info)


def train_stage(method: str) -> str:
    """The stage that trains a meta-learner's checkpoints."""
    return "train_classifier" if method in SINGLE_RUN else "train_classifier_replicated"
