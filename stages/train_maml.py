"""Stage train_maml (a matrix over variants x replicates): meta-train `maml` or `maml_matched` (MAML at
REML's budget) on sinusoids; `fomaml` and `reptile` train once (stage train_meta_once).

Writes the checkpoint (parameters, resolved config, and the test-time step size, which is the
variant's own inner step size for every K) and the meta-training curve.
"""

from reml.core import stage
from reml.families.sinusoid import baselines, config
from reml.families.sinusoid.checkpoint import save_checkpoint


def run(args, params: config.SinusoidParams) -> None:
    stage.matrix_item("--variant", args.variant, [v for v in config.META_VARIANTS if v not in config.SINGLE_RUN],
                      "train_maml")  # fmt: skip
    stage.matrix_item("--replicate", args.replicate, params.replicates, "replicates")
    ckpt, log = baselines.meta_learner(params, args.variant, args.replicate, device=args.device)
    print(f"{args.variant}: final meta-loss (post-adaptation query MSE) {log.loss[-1]:.4f}")
    stage.write_trained(save_checkpoint, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "variant", "out", "log_out", replicate=int)
