"""Stage train_reml_rl (a matrix over rl.run x rl.replicates): train REML's agent to compose policies for
one RL task family from a pool of policy layers (reml/families/rl/reml.py), run ``replicate`` with
rl.reml.seed + replicate."""

import pandas as pd

from reml.core import stage
from reml.core.io import write_text
from reml.families.rl import config, reml


def run(args, params: config.RLParams) -> None:
    stage.matrix_item("--family", args.family, params.rl.run, "rl.run")
    stage.matrix_item("--replicate", args.replicate, params.rl.replicates, "rl.replicates")
    composer, log = reml.train(params.rl, args.family, device=args.device, replicate=args.replicate)
    reml.save_rl_composer(args.out, composer.agent, args.family, composer.algorithm, composer.env,
                          params.rl.reml.ppo, reml.composer_config(params.rl, args.family, args.replicate))  # fmt: skip
    write_text(args.log_out, pd.DataFrame(log.rows).to_csv(index=False))
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "family", "out", "log_out", replicate=int)
