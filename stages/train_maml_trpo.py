"""Stage train_maml_trpo (a matrix over rl.run): MAML with a TRPO meta-update on one task family
(reml/families/rl/maml_trpo.py), the meta-batch's rollouts collected together by the vectorised sampler.
Training tasks come from their own seeded stream, never the test tasks'."""

from reml.core import stage
from reml.families.rl import config, maml_trpo
from reml.families.rl.checkpoint import save_policy


def run(args, params: config.RLParams) -> None:
    stage.matrix_item("--family", args.family, params.rl.run, "rl.run")
    ckpt, log = maml_trpo.train(params.rl, args.family, device=args.device)
    stage.write_trained(save_policy, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "family", "out", "log_out")
