"""Stage evaluate_fewshot: score every method on the same fixed test tasks through the shared harness.

Three evaluations, all on tasks no method trained on:
- the sinusoid test tasks, every K, 0..S steps of the adaptation optimiser (the main tables);
- a longer fine-tune (the REML thesis's convergence figure), one optimiser and step size for all;
- task families never seen in meta-training (research question 3), for every method that does not
  read the true task parameters.
REML methods compose one network per test task from its support points, with the pool frozen; a
method trained with several seeds has each task's curve averaged over its seeds.
"""

from pathlib import Path

from reml import stage
from reml.agents import load_agent
from reml.checkpoint import load_checkpoint
from reml.config import ORACLE_METHODS, REML_METHODS, ConfigError, split_reml_method
from reml.io import write_json, write_text
from reml.results import MethodResult, curves_table, evaluate_method, example_fits, metrics
from reml.tasks import load_taskset
from reml.tasks.families import UNRELATED_FAMILIES


def load_runs(params, models_dir: Path, method: str) -> list:
    """A method's trained runs: one checkpoint, or one REML agent per seed."""
    if method not in REML_METHODS:
        return [load_checkpoint(models_dir / f"{method}.safetensors", stage.producing_stage(method))]
    agent, encoding = split_reml_method(method)
    distribution = stage.sinusoid_distribution(params.sinusoid)
    runs = []
    for seed in params.train_reml.seeds:
        name = stage.reml_run(agent, encoding, seed)
        runs.append(load_agent(models_dir / "reml" / name, distribution, f"train_reml@{name}"))
    return runs


def describe(result: MethodResult, steps: int) -> str:
    return ", ".join(
        f"K={k} (lr {'/'.join(f'{lr:g}' for lr in result.step_sizes[k])}): {c.mean[0]:.3f} -> {c.mean[steps]:.3f}"
        for k, c in result.curves.items()
    )


def run(args, params):
    cfg, adaptation = params.evaluate_fewshot, params.adaptation
    tasks = load_taskset(args.test_tasks)
    unrelated = {name: load_taskset(Path(args.unrelated_dir) / f"{name}.safetensors") for name in UNRELATED_FAMILIES}
    needed = max(*adaptation.shots, cfg.unrelated_k, cfg.long_finetune.k)
    for path, task_set in ((args.test_tasks, tasks), *((args.unrelated_dir, t) for t in unrelated.values())):
        if needed > task_set.k_max:
            raise ConfigError(
                f"adaptation.shots / evaluate_fewshot: K = {needed} but {path} stores only {task_set.k_max} "
                "support points; rerun `dvc repro generate_tasks`"
            )
    # Load (and so check) every checkpoint before any compute.
    runs = {m: load_runs(params, Path(args.models_dir), m) for m in cfg.methods}

    results = []
    for method, method_runs in runs.items():
        result = evaluate_method(method_runs, tasks, adaptation.shots, adaptation.optimizer, adaptation.steps)
        results.append(result)
        print(f"{method:>20}: query MSE step 0 -> {adaptation.steps}: {describe(result, adaptation.steps)}")
    methods_info = {r.method: method_info(r, runs[r.method]) for r in results}  # before any recomposing

    long = cfg.long_finetune
    long_results = [
        evaluate_method(runs[m], tasks, [long.k], long.optimizer, long.steps, lr=long.lr) for m in long.methods
    ]
    for result in long_results:
        print(
            f"{result.method:>20}: {long.steps} {long.optimizer} steps (lr {long.lr:g}): {describe(result, long.steps)}"
        )

    unrelated_metrics = {"in_distribution": metrics([r for r in results if r.method not in ORACLE_METHODS])}
    for name, family_tasks in unrelated.items():
        family_results = [
            evaluate_method(method_runs, family_tasks, [cfg.unrelated_k], adaptation.optimizer, adaptation.steps)
            for method, method_runs in runs.items()
            if method not in ORACLE_METHODS
        ]
        unrelated_metrics[name] = metrics(family_results)
        print(f"{name}: " + ", ".join(f"{r.method} {describe(r, adaptation.steps)}" for r in family_results))

    examples = example_fits(
        [method_runs[0] for method_runs in runs.values()],
        tasks.subset(slice(0, cfg.n_examples)),
        stage.sinusoid_distribution(params.sinusoid),
        adaptation.shots,
        adaptation.optimizer,
        adaptation.steps,
    )
    write_json(args.metrics_out, metrics(results))
    write_json(args.unrelated_out, unrelated_metrics)
    write_text(args.curves_out, curves_table(results).to_csv(index=False))
    write_text(args.long_curves_out, curves_table(long_results).to_csv(index=False))
    write_text(args.examples_out, examples.to_csv(index=False))
    write_json(args.methods_out, methods_info)
    stage.wrote(args.metrics_out, args.unrelated_out, args.curves_out, args.long_curves_out, args.examples_out,
                args.methods_out)  # fmt: skip


def method_info(result: MethodResult, runs: list) -> dict:
    """Step sizes (one per run when a method has several seeds) and what each run recorded."""
    step_sizes = {f"k{k}": (lrs[0] if len(lrs) == 1 else list(lrs)) for k, lrs in result.step_sizes.items()}
    info = {"step_sizes": step_sizes, "inputs": runs[0].inputs}
    if result.method in REML_METHODS:
        info["test_invalid_rate"] = {f"k{k}": [r.invalid_rates[k] for r in runs] for k in result.curves}
        info["runs"] = [r.info for r in runs]
    else:
        info.update(runs[0].info)
    return info


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--test-tasks", required=True)
    p.add_argument("--unrelated-dir", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--metrics-out", required=True)
    p.add_argument("--unrelated-out", required=True)
    p.add_argument("--curves-out", required=True)
    p.add_argument("--long-curves-out", required=True)
    p.add_argument("--examples-out", required=True)
    p.add_argument("--methods-out", required=True)
    stage.main(run, p)
