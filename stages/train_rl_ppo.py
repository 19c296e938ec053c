"""Stage train_rl_ppo (a matrix over pretrained, oracle x rl.run): the RL ``pretrained`` or ``oracle``
policy, SB3 PPO on tasks drawn from the whole distribution, the oracle with the task parameters in its
observation (reml/families/rl/baselines.py)."""

from reml.core import stage
from reml.families.rl import baselines, config
from reml.families.rl.checkpoint import save_policy


def run(args, params: config.RLParams) -> None:
    stage.matrix_item("--method", args.method, ("pretrained", "oracle"), "train_rl_ppo")
    stage.matrix_item("--family", args.family, params.rl.run, "rl.run")
    ckpt, log = baselines.train(params.rl, args.method, args.family, device=args.device)
    stage.write_trained(save_policy, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "method", "family", "out", "log_out")
