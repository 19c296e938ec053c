"""Stage train_maml_trpo (a matrix over maml_trpo, maml_trpo_matched x rl.run x rl.baseline_replicates):
MAML with a TRPO meta-update on one task family (reml/families/rl/maml_trpo.py), the meta-batch's
rollouts collected together by the vectorised sampler; ``maml_trpo_matched`` meta-trains on REML's
number of training tasks. Training tasks come from their own seeded stream, never the test tasks'."""

from reml.core import stage
from reml.families.rl import config, maml_trpo
from reml.families.rl.checkpoint import save_policy


def run(args, params: config.RLParams) -> None:
    stage.matrix_item("--method", args.method, config.MAML_METHODS, "train_maml_trpo")
    stage.matrix_item("--family", args.family, params.rl.run, "rl.run")
    stage.matrix_item("--replicate", args.replicate, params.rl.baseline_replicates, "rl.baseline_replicates")
    ckpt, log = maml_trpo.train(params.rl, args.family, device=args.device, method=args.method,
                                replicate=args.replicate)  # fmt: skip
    stage.write_trained(save_policy, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "method", "family", "out", "log_out", replicate=int)
