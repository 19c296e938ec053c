"""Stage train_rl_ppo (a matrix over pretrained, pretrained_matched, oracle x rl.run x
rl.baseline_replicates): the RL ``pretrained`` or ``oracle`` policy, SB3 PPO on tasks drawn from the
whole distribution, the oracle with the task parameters in its observation; ``pretrained_matched`` at
REML's number of training tasks (reml/families/rl/baselines.py)."""

from reml.core import stage
from reml.families.rl import baselines, config
from reml.families.rl.checkpoint import save_policy


def run(args, params: config.RLParams) -> None:
    stage.matrix_item("--method", args.method, config.PPO_METHODS, "train_rl_ppo")
    stage.matrix_item("--family", args.family, params.rl.run, "rl.run")
    stage.matrix_item("--replicate", args.replicate, params.rl.baseline_replicates, "rl.baseline_replicates")
    ckpt, log = baselines.train(params.rl, args.method, args.family, device=args.device, replicate=args.replicate)
    stage.write_trained(save_policy, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "method", "family", "out", "log_out", replicate=int)
