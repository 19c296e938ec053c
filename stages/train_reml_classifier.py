"""Stage train_reml_classifier (a matrix over agents x replicates x N): train one REML agent to compose
conv networks for N-way episodes from a pool of conv blocks and heads (reml/families/classification/reml.py),
then tune its test-time step size per K on validation episodes; the reference agent's ablations
(reml_random, reml_fixed) are tuned there too."""

import pandas as pd

from reml.core import stage
from reml.core.io import atomic_dir, write_text
from reml.families.classification import config, reml
from reml.families.classification.data import load_split


def run(args, params: config.ClassificationParams) -> None:
    cfg = params.classification
    stage.matrix_item("--agent", args.agent, cfg.reml.agents, "classification.reml.agents")
    stage.matrix_item("--ways", args.ways, cfg.ways, "classification.ways")
    stage.matrix_item("--replicate", args.replicate, cfg.replicates, "classification.replicates")
    train, val = load_split(args.data_dir, "train", cfg), load_split(args.data_dir, "val", cfg)
    with atomic_dir(args.out) as directory:
        rows = reml.train(params, args.agent, args.ways, train, val, directory, args.replicate, device=args.device)
    write_text(args.log_out, pd.DataFrame(rows).to_csv(index=False))
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "agent", "data_dir", "out", "log_out", ways=int, replicate=int)
