"""Stage train_reml_classifier: train one REML agent to compose conv networks for N-way episodes from a
pool of conv blocks and heads (reml/compose_conv.py), then tune its test-time step size per K on
validation episodes. Training K is drawn from ``classification.shots`` every episode."""

import shutil
import sys
from pathlib import Path

import pandas as pd

from reml import stage
from reml.agents import ALGORITHMS, TrainingCurve, make_agent
from reml.classification import EpisodeDistribution, classification_config, fixed_episodes, load_split
from reml.compose_conv import BlockPool, ConvCompositionEnv
from reml.config import PpoConfig
from reml.io import write_text
from reml.reml_classifier import Classifier, save_reml_classifier
from reml.seeding import generator


def run(args, params):
    cfg = classification_config(params)
    r = cfg.reml
    ppo: PpoConfig = params.train_reml.ppo
    train = load_split(args.data_dir, "train", cfg)
    val = load_split(args.data_dir, "val", cfg)
    net = cfg.network(args.ways)
    pool = BlockPool.create(net, r.pool.n_input, r.pool.n_hidden, r.pool.n_output,
                            generator(r.seed, f"cls/reml/{args.agent}/{args.ways}w/pool"))  # fmt: skip
    env = ConvCompositionEnv(pool, EpisodeDistribution(train, args.ways), cfg.shots, cfg.n_query, r.inner_lr,
                             r.inner_steps, r.reward_scale, write_back=True, blend=r.blend)  # fmt: skip
    env.reset(seed=r.seed)
    algorithm = make_agent(args.agent, env, ppo, r.seed)
    curve = TrainingCurve(log_every=max(r.timesteps // 30, 1))
    algorithm.learn(total_timesteps=r.timesteps, callback=curve, progress_bar=sys.stdout.isatty())
    classifier = Classifier.from_training(args.agent, algorithm, env, cfg, args.ways)
    step_sizes, tuning = {}, {}
    for k in cfg.shots:
        episodes = fixed_episodes(val, cfg, args.ways, k, cfg.evaluate.n_val, "val")
        step_sizes[k], tuning[f"k{k}"] = classifier.tune(episodes, cfg.evaluate.steps, cfg.evaluate.lr_grid)
        print(f"K={k}: step size {step_sizes[k]} (validation accuracy by step size {tuning[f'k{k}']})")
    out = Path(args.out)
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_reml_classifier(partial, classifier, ppo, step_sizes, {"tuning": tuning}, cfg)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    write_text(args.log_out, pd.DataFrame(curve.rows).to_csv(index=False))
    stage.wrote(out, args.log_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--agent", required=True, choices=sorted(ALGORITHMS))
    p.add_argument("--ways", type=int, required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True, help="directory: policy.zip, policy.safetensors, pool.safetensors")
    p.add_argument("--log-out", required=True)
    stage.main(run, p)
