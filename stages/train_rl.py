"""Stage train_rl: train one RL method on one task family.

``maml_trpo``: MAML with a TRPO meta-update (baselines/maml_trpo.py), rollouts of the whole meta-batch
collected together by the vectorised sampler. ``pretrained`` / ``oracle``: SB3 PPO on tasks drawn from
the whole distribution, the oracle with the task parameters in its observation (baselines/rl_ppo.py).
Training tasks come from their own seeded streams, never the test tasks' stream.
"""

import sys

from baselines.maml_trpo import MamlTrpoSettings, train_maml_trpo
from baselines.rl_ppo import train_ppo
from reml import stage
from reml.config import to_dict
from reml.rl.checkpoint import PolicyCheckpoint, save_policy
from reml.rl.config import TRAINED, rl_config
from reml.rl.policy import GaussianPolicy
from reml.rl.sampler import Sampler
from reml.seeding import generator
from reml.tasks.rl import rl_family


def run(args, params):
    cfg = rl_config(params)
    if args.family not in cfg.run:
        raise SystemExit(f"error: --family {args.family!r} is not in rl.run ({list(cfg.run)})")
    family, budget = rl_family(args.family), cfg.family(args.family)
    probe = family.make_env()
    obs_dim, act_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    with_task = args.method == "oracle"
    policy = GaussianPolicy(obs_dim + (len(family.param_names) if with_task else 0), act_dim)
    if args.method == "maml_trpo":
        m = cfg.maml_trpo
        settings = MamlTrpoSettings(
            budget.iterations, budget.meta_batch, budget.rollouts, m.inner_lr, cfg.gamma,
            m.first_order, m.max_kl, m.cg_iters, m.cg_damping, m.ls_steps, m.ls_ratio, m.threads,
        )  # fmt: skip
        with Sampler.for_job(family, cfg.sampler, budget.meta_batch * budget.rollouts) as s:
            trained, log = train_maml_trpo(policy, s, settings, m.seed, desc=f"maml_trpo {args.family}")
        # Only what this stage declares as params (dvc.yaml), so the checkpoint's bytes follow them.
        config = to_dict(m) | {"iterations": budget.iterations, "meta_batch": budget.meta_batch,
                               "rollouts": budget.rollouts}  # fmt: skip
        last = log.rows[-1]
        print(f"maml_trpo {args.family}: last iteration return {last['return_before']:.2f} before, "
              f"{last['return_after']:.2f} after the inner step")  # fmt: skip
    else:
        p = cfg.ppo
        tasks = generator(p.seed, f"rl/{args.family}/{args.method}")  # a fresh task every episode
        trained, log = train_ppo(family, policy, tasks, with_task, budget.ppo_timesteps, cfg.gamma, p.n_steps,
                                 p.batch_size, p.n_epochs, p.learning_rate, p.seed,
                                 progress_bar=sys.stdout.isatty())  # fmt: skip
        config = to_dict(p) | {"timesteps": budget.ppo_timesteps}
        if log.rows:
            last = log.rows[-1]["episode_return"]
            print(f"{args.method} {args.family}: last rollout's mean episode return {last:.2f}")
    save_policy(args.out, PolicyCheckpoint(args.method, args.family, policy, trained, with_task, config))
    log.write(args.log_out)
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--method", required=True, choices=TRAINED)
    p.add_argument("--family", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--log-out", required=True)
    stage.main(run, p)
