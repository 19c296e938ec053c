"""Stage train_maml (a matrix over variants): meta-train `maml`, `fomaml` or `reptile` on sinusoids.

Writes the checkpoint (parameters, resolved config, and the test-time step size, which is the
variant's own inner step size for every K) and the meta-training curve.
"""

from baselines.maml import train_maml
from baselines.reptile import train_reptile
from reml import stage
from reml.checkpoint import Checkpoint, save_checkpoint
from reml.config import META_LEARNERS, ReptileConfig, to_dict
from reml.nets import MLP
from reml.seeding import generator


def run(args, params):
    cfg = getattr(params.train_maml, args.variant)
    distribution = stage.sinusoid_distribution(params.sinusoid)
    model = MLP((1, *params.model.hidden, 1))
    rng = generator(cfg.seed, f"{args.variant}/train")
    common = (cfg.iterations, cfg.meta_batch, cfg.k_support, cfg.k_query, cfg.inner_lr, cfg.inner_steps)
    if isinstance(cfg, ReptileConfig):
        theta, log = train_reptile(model, distribution, *common, cfg.outer_lr, rng, desc=args.variant)
    else:
        theta, log = train_maml(model, distribution, *common, cfg.meta_lr, cfg.first_order, rng, desc=args.variant)
    ckpt = Checkpoint(
        method=args.variant,
        sizes=model.sizes,
        inputs="x",
        step_sizes={k: cfg.inner_lr for k in params.adaptation.shots},
        params=theta,
        config=to_dict(cfg) | {"model": to_dict(params.model), "sinusoid": to_dict(params.sinusoid)},
        info={"final_meta_loss": log.loss[-1]},
    )
    save_checkpoint(args.out, ckpt)
    log.write(args.log_out)
    print(f"{args.variant}: final meta-loss (post-adaptation query MSE) {log.loss[-1]:.4f}")
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--variant", choices=META_LEARNERS, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--log-out", required=True)
    stage.main(run, p)
