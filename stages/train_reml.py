"""Stage train_reml: train one REML agent (PPO, MaskablePPO or RecurrentPPO) and its layer pool.

One item of the DVC matrix agents x encodings x variants x replicates (the replicate is the agent's seed;
reml/families/sinusoid/reml.py). The output directory is written under a temporary name and renamed
when complete, so a failed run never leaves a directory DVC could cache as valid.
"""

import pandas as pd

from reml.core import stage
from reml.core.io import atomic_dir, write_text
from reml.core.tasks import load_taskset
from reml.families.sinusoid import config, reml


def run(args, params: config.SinusoidParams) -> None:
    stage.matrix_item("--agent", args.agent, params.train_reml.agents, "train_reml.agents")
    stage.matrix_item("--encoding", args.encoding, params.train_reml.encodings, "train_reml.encodings")
    stage.matrix_item("--variant", args.variant, params.train_reml.variants, "train_reml.variants")
    stage.matrix_item("--seed", args.seed, params.replicates, "replicates")
    val_tasks = load_taskset(args.val_tasks)
    with atomic_dir(args.out) as directory:
        rows = reml.train(
            params, args.agent, args.encoding, args.variant, args.seed, val_tasks, directory, device=args.device
        )
        write_text(args.log_out, pd.DataFrame(rows).to_csv(index=False))
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "agent", "encoding", "variant", "val_tasks", "out", "log_out", seed=int)
