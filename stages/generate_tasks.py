"""Stage generate_tasks: sample the fixed sinusoid meta-test set, the validation set, and test sets of
task families never seen in meta-training (research question 3)."""

from pathlib import Path

from reml import stage
from reml.seeding import generator
from reml.tasks import save_taskset
from reml.tasks.families import UNRELATED_FAMILIES


def run(args, params):
    cfg = params.generate_tasks
    distribution = stage.sinusoid_distribution(params.sinusoid)
    # Separate streams: the test set, the validation set and every method's training tasks never coincide.
    test = distribution.sample(cfg.n_test, cfg.k_max, cfg.n_query, generator(cfg.seed, "sinusoid/test"))
    val = distribution.sample(cfg.n_val, cfg.k_max, cfg.n_query, generator(cfg.seed, "sinusoid/val"))
    save_taskset(args.test_out, test)
    save_taskset(args.val_out, val)
    print(f"{cfg.n_test} test and {cfg.n_val} validation tasks, {cfg.k_max} support + {cfg.n_query} query points")
    unrelated_dir = Path(args.unrelated_dir)
    for name, family in UNRELATED_FAMILIES.items():
        tasks = family.sample(cfg.n_unrelated, cfg.k_max, cfg.n_query, generator(cfg.seed, f"unrelated/{name}"))
        save_taskset(unrelated_dir / f"{name}.safetensors", tasks)
        print(f"{cfg.n_unrelated} unrelated test tasks: {family.description}")
    stage.wrote(args.test_out, args.val_out, unrelated_dir)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--test-out", required=True)
    p.add_argument("--val-out", required=True)
    p.add_argument("--unrelated-dir", required=True, help="one task set per unrelated family")
    stage.main(run, p)
