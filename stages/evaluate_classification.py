"""Stage evaluate_classification: score every classification method on the same fixed test episodes.

For each N-way K-shot setting: scratch (a fresh network), pretrained (its body with a fresh zero head),
MAML / FOMAML / Reptile (their (N, K) checkpoint) and each REML agent (one network composed per
episode from its support images) are fine-tuned with SGD on the support images for S steps by the
shared harness, and scored by query accuracy after every step. Step sizes: the meta-learners use
their inner α (as Finn et al.); scratch, pretrained and REML use the step size tuned on validation
episodes. Writes ``<dataset>.<method>.<N>w<K>s.acc_step<S>`` / ``ci95_step<S>`` and the curves.
"""

import math
from pathlib import Path

import pandas as pd

from baselines.classifier import fresh_head
from reml import stage
from reml.classification import (
    META_LEARNERS,
    classification_config,
    fixed_episodes,
    load_classifier,
    load_split,
    score_accuracy,
    setting_name,
    tune_step_size,
)
from reml.harness import Adaptation
from reml.io import write_json, write_text
from reml.reml_classifier import load_reml_classifier
from reml.seeding import generator


def _finite(value) -> float | None:
    """Rounded for the metrics JSON; None (null) if fine-tuning diverged on some episode."""
    v = float(value)
    return round(v, 4) if math.isfinite(v) else None


def run(args, params):
    cfg = classification_config(params)
    models = Path(args.models_dir)
    agents = cfg.reml.agents
    # Every input is checked before any scoring.
    pretrained = load_classifier(models / "pretrained.safetensors", "train_pretrained_classifier",
                                 cfg.network(min(cfg.ways)), body_only=True)  # fmt: skip
    checkpoints = {
        (m, n, k): load_classifier(models / f"{m}-{setting_name(n, k)}.safetensors",
                                   f"train_classifier@{m}-{n}-{k}", cfg.network(n))  # fmt: skip
        for m in META_LEARNERS for n, k in cfg.settings()
    }  # fmt: skip
    remls = {(a, n): load_reml_classifier(models / "reml" / f"{a}-{n}w", f"train_reml_classifier@{a}-{n}")
             for a in agents for n in cfg.ways}  # fmt: skip
    val, test = load_split(args.data_dir, "val", cfg), load_split(args.data_dir, "test", cfg)
    steps, grid = cfg.evaluate.steps, cfg.evaluate.lr_grid
    metrics, curves, methods = {}, {"step": list(range(steps + 1))}, {}
    for n, k in cfg.settings():
        name = setting_name(n, k)
        episodes = fixed_episodes(test, cfg, n, k, cfg.evaluate.n_test, "test")
        val_eps = fixed_episodes(val, cfg, n, k, cfg.evaluate.n_val, "val")
        net = cfg.network(n)
        head = max(int(key.split(".")[0]) for key in pretrained.params)
        starts = {
            "scratch": net.init(generator(cfg.evaluate.seed, f"cls/scratch/{name}")),
            "pretrained": fresh_head(pretrained.params, head, n),
        }
        results = {}
        for method, start in starts.items():
            lr, by_lr = tune_step_size(net, start, val_eps, steps, grid)
            tuning = {"val_accuracy_by_step_size": {str(g): round(v, 4) for g, v in by_lr.items()}}
            results[method] = (lr, score_accuracy(net, start, episodes, Adaptation("sgd", lr, steps)), tuning)
        for method in META_LEARNERS:
            ckpt = checkpoints[(method, n, k)]
            lr = ckpt.step_sizes[k]
            results[method] = (lr, score_accuracy(net, ckpt.params, episodes, Adaptation("sgd", lr, steps)), None)
        for agent in agents:
            classifier = remls[(agent, n)]
            lr = classifier.step_sizes[k]
            curve = classifier.score(episodes, Adaptation("sgd", lr, steps))
            results[agent] = (lr, curve, {"invalid_rate": round(classifier.invalid_rates[k], 4),
                                          "distinct_networks": classifier.distinct_networks[k]})  # fmt: skip
        for method, (lr, curve, extra) in results.items():
            leaves = {f"acc_step{s}": _finite(curve.mean[s]) for s in range(steps + 1)}
            leaves |= {f"ci95_step{s}": _finite(curve.ci95[s]) for s in range(steps + 1)}
            metrics.setdefault(method, {})[name] = {
                k_: round(v, 4) if v is not None else None for k_, v in leaves.items()
            }
            curves[f"{method}_{name}"] = [round(float(v), 4) for v in curve.mean]
            methods.setdefault(method, {})[name] = {"step_size": lr, **(extra or {})}
            print(f"{name} {method:14s} lr {lr:<6} acc " + " ".join(f"{float(v):.3f}" for v in curve.mean))
    write_json(args.metrics_out, {cfg.dataset: metrics})
    write_text(args.curves_out, pd.DataFrame(curves).to_csv(index=False))
    write_json(
        args.methods_out, {"dataset": cfg.dataset, "n_test": cfg.evaluate.n_test, "steps": steps, "methods": methods}
    )
    stage.wrote(args.metrics_out, args.curves_out, args.methods_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--metrics-out", required=True)
    p.add_argument("--curves-out", required=True)
    p.add_argument("--methods-out", required=True)
    stage.main(run, p)
