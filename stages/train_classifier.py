"""Stage train_classifier (a matrix over methods x N x K): meta-train MAML, FOMAML or Reptile for one
N-way K-shot classification setting."""

from reml.core import stage
from reml.families.classification import baselines, config
from reml.families.classification.checkpoint import save_classifier
from reml.families.classification.data import load_split
from reml.methods.config import META_LEARNERS


def run(args, params: config.ClassificationParams) -> None:
    cfg = params.classification
    stage.matrix_item("--method", args.method, META_LEARNERS, "train_classifier")
    stage.matrix_item("--ways", args.ways, cfg.ways, "classification.ways")
    stage.matrix_item("--shots", args.shots, cfg.shots, "classification.shots")
    train = load_split(args.data_dir, "train", cfg)
    ckpt, log = baselines.meta_learner(cfg, args.method, args.ways, args.shots, train, device=args.device)
    print(f"{args.method}: final training loss {log.loss[-1]:.4f}")
    stage.write_trained(save_classifier, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "method", "data_dir", "out", "log_out", ways=int, shots=int)
