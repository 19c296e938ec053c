"""Scoring every classification method on the same fixed test episodes (stage ``evaluate_classification``).

For each N-way K-shot setting: scratch (a fresh network), pretrained (its body with a fresh zero head),
MAML / FOMAML / Reptile (their (N, K) checkpoint) and each REML agent (one network composed per
episode from its support images) are fine-tuned with SGD on the support images for S steps by the
shared harness, and scored by query accuracy after every step. Step sizes: the meta-learners use
their inner α (as Finn et al.); scratch, pretrained and REML use the step size tuned on validation
episodes. Writes ``<dataset>.<method>.<N>w<K>s.acc_step<S>`` / ``ci95_step<S>`` and the curves.

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

from reml.core.curve import rounded
from reml.core.harness import Adaptation
from reml.core.headline import headline
from reml.core.nets import on_device
from reml.core.seeding import generator
from reml.families.classification.baselines import fresh_head
from reml.families.classification.checkpoint import head_slot, load_classifier
from reml.families.classification.config import ClassificationConfig, setting_name
from reml.families.classification.reml import load_composer
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


def evaluate(
    cfg: ClassificationConfig, models: Path, val: ClassPool, test: ClassPool, *, device: torch.device
) -> Evaluation:
    """Score every method on the fixed test episodes of every setting, on ``device``; every checkpoint is
    loaded (and so checked) before any scoring."""
    pretrained = load_classifier(models / "pretrained.safetensors", "train_pretrained_classifier",
                                 cfg.network(min(cfg.ways)), body_only=True, method="pretrained",
                                 device=device)  # fmt: skip
    checkpoints = {
        (m, n, k): load_classifier(models / f"{m}-{setting_name(n, k)}.safetensors",
                                   f"train_classifier@{m}-{n}-{k}", cfg.network(n), method=m,
                                   device=device)  # fmt: skip
        for m in META_LEARNERS for n, k in cfg.settings()
    }  # fmt: skip
    agents = {(a, n): load_composer(models / "reml" / f"{a}-{n}w", f"train_reml_classifier@{a}-{n}", device=device)
              for a in cfg.reml.agents for n in cfg.ways}  # fmt: skip
    steps, grid = cfg.evaluate.steps, cfg.evaluate.lr_grid
    metrics, curves, methods = {}, {"step": list(range(steps + 1))}, {}
    for n, k in cfg.settings():
        name = setting_name(n, k)
        episodes = fixed_episodes(test, cfg, n, k, cfg.evaluate.n_test, "test").to(device)
        val_eps = fixed_episodes(val, cfg, n, k, cfg.evaluate.n_val, "val").to(device)
        net = cfg.network(n)
        starts = {
            "scratch": on_device(net.init(generator(cfg.evaluate.seed, f"cls/scratch/{name}")), device),
            "pretrained": fresh_head(pretrained.params, head_slot(pretrained.params), n),
        }
        results = {}
        for method, start in starts.items():
            lr, by_lr = tune_episodes(net, start, val_eps, steps, grid)
            tuning = {"val_accuracy_by_step_size": {str(g): round(v, 4) for g, v in by_lr.items()}}
            results[method] = (lr, score_episodes(net, start, episodes, Adaptation("sgd", lr, steps)), tuning)
        for method in META_LEARNERS:
            ckpt = checkpoints[(method, n, k)]
            lr = ckpt.step_sizes[k]
            results[method] = (lr, score_episodes(net, ckpt.params, episodes, Adaptation("sgd", lr, steps)), None)
        for agent in cfg.reml.agents:
            composer = agents[(agent, n)]
            lr = composer.step_sizes[k]
            curve = composer.score(episodes, Adaptation("sgd", lr, steps))
            results[agent] = (lr, curve, {"invalid_rate": round(composer.invalid_rates[k], 4),
                                          "distinct_networks": composer.distinct_networks[k]})  # fmt: skip
        for method, (lr, curve, extra) in results.items():
            leaves = {f"acc_step{s}": rounded(curve.mean[s], 4) for s in range(steps + 1)}
            leaves |= {f"ci95_step{s}": rounded(curve.ci95[s], 4) for s in range(steps + 1)}
            metrics.setdefault(method, {})[name] = {
                k_: round(v, 4) if v is not None else None for k_, v in leaves.items()
            }
            curves[f"{method}_{name}"] = [round(float(v), 4) for v in curve.mean]
            curves[f"{method}_{name}_ci95"] = [round(float(v), 4) for v in curve.ci95]
            methods.setdefault(method, {})[name] = {"step_size": lr, **(extra or {})}
            print(f"{name} {method:14s} lr {lr:<6} acc " + " ".join(f"{float(v):.3f}" for v in curve.mean))
    info = {"dataset": cfg.dataset, "n_test": cfg.evaluate.n_test, "steps": steps, "methods": methods}
    return Evaluation({cfg.dataset: metrics}, pd.DataFrame(curves), info)
