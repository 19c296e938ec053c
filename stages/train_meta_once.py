"""Stage train_meta_once (a matrix over fomaml, reptile): meta-train a sinusoid meta-learner that the
research questions do not compare with REML, once (replicate 0); same code and outputs as train_maml."""

from reml.core import stage
from reml.families.sinusoid import baselines, config
from reml.families.sinusoid.checkpoint import save_checkpoint


def run(args, params: config.SinusoidParams) -> None:
    stage.matrix_item("--variant", args.variant, config.SINGLE_RUN, "train_meta_once")
    stage.matrix_item("--replicate", args.replicate, params.runs(args.variant), "replicates (one run)")
    ckpt, log = baselines.meta_learner(params, args.variant, args.replicate, device=args.device)
    print(f"{args.variant}: final meta-loss (post-adaptation query MSE) {log.loss[-1]:.4f}")
    stage.write_trained(save_checkpoint, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "variant", "out", "log_out", replicate=int)
