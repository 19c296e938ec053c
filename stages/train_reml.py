"""Stage train_reml: train one REML agent (PPO, MaskablePPO or RecurrentPPO) and its layer pool.

One item of the DVC matrix agents x encodings x seeds. Training tasks are drawn fresh from the
training distribution every episode (K drawn from adaptation.shots); the validation tasks only tune
the test-time step size per K, after training. The output directory is written under a temporary
name and renamed when complete, so a failed run never leaves a directory DVC could cache as valid.
"""

import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from baselines.tuned import tune_per_k
from reml import stage
from reml.agents import Checkpoints, Composer, TrainingCurve, create_pool, make_agent, make_env, save_agent
from reml.config import REML_AGENTS, REML_ENCODINGS, ConfigError, to_dict
from reml.io import write_text
from reml.seeding import generator
from reml.tasks import load_taskset


def run(args, params):
    cfg, reml_cfg, shots = params.train_reml, params.reml, params.adaptation.shots
    val_tasks = load_taskset(args.val_tasks)
    if max(shots) > val_tasks.k_max:
        raise ConfigError(
            f"adaptation.shots: K = {max(shots)} exceeds the {val_tasks.k_max} points of {args.val_tasks}"
        )
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)

    distribution = stage.sinusoid_distribution(params.sinusoid)
    pool = create_pool(reml_cfg, generator(args.seed, "reml/pool"))  # same initial pool for every agent
    env = make_env(pool, reml_cfg, distribution, shots, args.encoding)
    algorithm = make_agent(args.agent, env, cfg.ppo, args.seed)
    curve = TrainingCurve(cfg.log_every)
    start = time.perf_counter()
    algorithm.learn(
        cfg.timesteps,
        callback=[curve, Checkpoints(env, tmp / "checkpoints", cfg.checkpoint_every)],
        progress_bar=sys.stdout.isatty(),
    )
    seconds = time.perf_counter() - start
    print(f"{args.agent} ({args.encoding}, seed {args.seed}): {cfg.timesteps} timesteps in {seconds:.1f} s "
          f"({cfg.timesteps / seconds:.0f}/s)")  # fmt: skip
    for row in curve.rows[:: max(1, len(curve.rows) // 5)] + curve.rows[-1:]:
        print("  " + ", ".join(f"{k} {v:g}" for k, v in row.items()))

    # Tune the test-time step size per K on validation tasks, composing from their support points.
    composer = Composer(args.agent, args.encoding, algorithm, make_env(env.pool, reml_cfg, distribution, shots,
                                                                       args.encoding, write_back=False))  # fmt: skip
    step_sizes, tuning = tune_per_k(composer.model, composer.initial_params, "x", val_tasks, params.adaptation)
    assert composer.pool is env.pool, "composing for validation tasks must not modify the pool"
    info = {
        "seed": args.seed,
        "timesteps": cfg.timesteps,
        "step_size_tuning": tuning,
        "pool_chosen": env.pool.chosen.tolist(),
    }
    save_agent(tmp, args.agent, args.encoding, algorithm, env.pool, reml_cfg, cfg.ppo, shots, step_sizes, info)
    write_text(args.log_out, pd.DataFrame(curve.rows).to_csv(index=False))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"test-time step sizes (tuned on validation tasks): {step_sizes}; config {to_dict(cfg.ppo)}")
    stage.wrote(out, args.log_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--agent", required=True, choices=REML_AGENTS)
    p.add_argument("--encoding", required=True, choices=REML_ENCODINGS)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--val-tasks", required=True)
    p.add_argument("--out", required=True, help="directory for policy.zip, policy.safetensors, pool.safetensors")
    p.add_argument("--log-out", required=True, help="training curve CSV")
    stage.main(run, p)
