"""Stage train_reml_rl: train REML's agent to compose policies for one RL task family from a pool of
policy layers (reml/rl/compose.py). Every episode draws a fresh training task, probes it, composes,
trains the composed policy by policy gradient and writes the trained layers back into the pool. The
training tasks come from the composition environment's own generator, which SB3 seeds from
``rl.reml.seed`` (never from the test tasks' stream)."""

import sys

import pandas as pd
import torch

from reml import stage
from reml.agents import make_agent
from reml.config import to_dict
from reml.io import write_text
from reml.pool import LayerPool
from reml.rl.compose import ComposeSettings, CompositionLog, RLCompositionEnv, save_rl_composer
from reml.rl.config import rl_config
from reml.rl.sampler import Sampler
from reml.seeding import generator
from reml.tasks.rl import rl_family


def run(args, params):
    cfg = rl_config(params)
    if args.family not in cfg.run:
        raise SystemExit(f"error: --family {args.family!r} is not in rl.run ({list(cfg.run)})")
    r, budget, family = cfg.reml, cfg.family(args.family), rl_family(args.family)
    spaces = family.make_env()
    obs_dim, act_dim = spaces.observation_space.shape[0], spaces.action_space.shape[0]
    spaces.close()
    p = r.pool
    pool = LayerPool.create(obs_dim, p.width, act_dim, p.n_input, p.n_hidden, p.n_output,
                            generator(r.seed, f"rl/reml/{args.family}/pool"))  # fmt: skip
    settings = ComposeSettings(budget.rollouts, r.inner_lr, r.inner_steps, cfg.gamma, budget.return_scale, r.blend)
    # One task's batch at a time: small, so it runs in-process (the result does not depend on workers).
    with Sampler(family, budget.rollouts, workers=1) as sampler:
        env = RLCompositionEnv(pool, torch.zeros(act_dim), family, obs_dim, act_dim, settings, sampler)
        algorithm = make_agent(r.agent, env, r.ppo, r.seed)
        log = CompositionLog(log_every=r.ppo.n_steps)
        algorithm.learn(total_timesteps=3 * budget.reml_episodes, callback=log, progress_bar=sys.stdout.isatty())
    config = to_dict(r) | {"reml_episodes": budget.reml_episodes, "rollouts": budget.rollouts,
                           "return_scale": budget.return_scale}  # fmt: skip
    save_rl_composer(args.out, r.agent, args.family, algorithm, env, r.ppo, config)
    write_text(args.log_out, pd.DataFrame(log.rows).to_csv(index=False))
    if log.rows:
        first, last = log.rows[0], log.rows[-1]
        print(
            f"{r.agent} {args.family}: return after the inner step {first['return_after']:.2f} (first "
            f"{r.ppo.n_steps // 3} compositions) -> {last['return_after']:.2f} (last); probe {last['probe_return']:.2f}"
        )
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--family", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--log-out", required=True)
    stage.main(run, p)
