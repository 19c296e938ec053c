"""Stage generate_tasks: sample the fixed sinusoid meta-test set, the validation set, and test sets of
task families never seen in meta-training (research question 3)."""

from pathlib import Path

from reml.core import stage
from reml.core.tasks import save_taskset
from reml.families.sinusoid import config
from reml.families.sinusoid.tasks import UNRELATED_FAMILIES, fixed_task_sets


def run(args, params: config.SinusoidParams) -> None:
    cfg = params.generate_tasks
    test, val, unrelated = fixed_task_sets(params)
    save_taskset(args.test_out, test)
    save_taskset(args.val_out, val)
    print(f"{cfg.n_test} test and {cfg.n_val} validation tasks, {cfg.k_max} support + {cfg.n_query} query points")
    for name, tasks in unrelated.items():
        save_taskset(Path(args.unrelated_dir) / f"{name}.safetensors", tasks)
        print(f"{cfg.n_unrelated} unrelated test tasks: {UNRELATED_FAMILIES[name].description}")
    stage.wrote(args.test_out, args.val_out, args.unrelated_dir)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "test_out", "val_out", "unrelated_dir", on_device=False)
