"""Stage evaluate_fewshot: score every method's checkpoint on the same fixed test tasks."""

from pathlib import Path

from reml import stage
from reml.checkpoint import load_checkpoint
from reml.config import ConfigError
from reml.io import write_json, write_text
from reml.results import curves_table, evaluate_method, example_fits, metrics
from reml.tasks import load_taskset


def run(args, params):
    cfg, adaptation = params.evaluate_fewshot, params.adaptation
    tasks = load_taskset(args.test_tasks)
    if max(adaptation.shots) > tasks.k_max:
        raise ConfigError(
            f"adaptation.shots: K = {max(adaptation.shots)} but {args.test_tasks} "
            f"stores only {tasks.k_max} support points; rerun `dvc repro generate_tasks`"
        )
    # Load (and so check) every checkpoint before any compute.
    ckpts = [load_checkpoint(Path(args.models_dir) / f"{m}.safetensors", stage.producing_stage(m)) for m in cfg.methods]
    results = []
    for ckpt in ckpts:
        result = evaluate_method(ckpt, tasks, adaptation.shots, adaptation.optimizer, adaptation.steps)
        results.append(result)
        summary = ", ".join(
            f"K={k} (lr {ckpt.step_size(k):g}): {c.mean[0]:.3f} -> {c.mean[-1]:.3f}" for k, c in result.curves.items()
        )
        print(f"{ckpt.method:>12}: query MSE step 0 -> {adaptation.steps}: {summary}")
    examples = example_fits(
        ckpts,
        tasks.subset(slice(0, cfg.n_examples)),
        stage.sinusoid_distribution(params.sinusoid),
        adaptation.shots,
        adaptation.optimizer,
        adaptation.steps,
    )
    write_json(args.metrics_out, metrics(results))
    write_text(args.curves_out, curves_table(results).to_csv(index=False))
    write_text(args.examples_out, examples.to_csv(index=False))
    write_json(
        args.methods_out,
        {
            c.method: {"step_sizes": {f"k{k}": lr for k, lr in c.step_sizes.items()}, "inputs": c.inputs, **c.info}
            for c in ckpts
        },
    )
    stage.wrote(args.metrics_out, args.curves_out, args.examples_out, args.methods_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--test-tasks", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--metrics-out", required=True)
    p.add_argument("--curves-out", required=True)
    p.add_argument("--examples-out", required=True)
    p.add_argument("--methods-out", required=True)
    stage.main(run, p)
