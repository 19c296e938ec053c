"""Stage generate_tasks: sample the fixed sinusoid meta-test set and the validation set."""

from reml import stage
from reml.seeding import generator
from reml.tasks import save_taskset


def run(args, params):
    cfg = params.generate_tasks
    distribution = stage.sinusoid_distribution(params.sinusoid)
    # Separate streams: the test set, the validation set and every method's training tasks never coincide.
    test = distribution.sample(cfg.n_test, cfg.k_max, cfg.n_query, generator(cfg.seed, "sinusoid/test"))
    val = distribution.sample(cfg.n_val, cfg.k_max, cfg.n_query, generator(cfg.seed, "sinusoid/val"))
    save_taskset(args.test_out, test)
    save_taskset(args.val_out, val)
    print(f"{cfg.n_test} test and {cfg.n_val} validation tasks, {cfg.k_max} support + {cfg.n_query} query points")
    stage.wrote(args.test_out, args.val_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--test-out", required=True)
    p.add_argument("--val-out", required=True)
    stage.main(run, p)
