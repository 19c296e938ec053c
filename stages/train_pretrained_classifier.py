"""Stage train_pretrained_classifier (a matrix over pretrained / pretrained_matched x replicates): a
classifier trained on every meta-train class at once (one for all N-way K-shot settings; a fresh N-way
head at test); `pretrained_matched` sees as many labelled images as one REML run."""

from reml.core import stage
from reml.families.classification import baselines, config
from reml.families.classification.checkpoint import save_classifier
from reml.families.classification.data import load_split


def run(args, params: config.ClassificationParams) -> None:
    cfg = params.classification
    stage.matrix_item("--method", args.method, ("pretrained", "pretrained_matched"), "train_pretrained_classifier")
    stage.matrix_item("--replicate", args.replicate, cfg.replicates, "classification.replicates")
    train = load_split(args.data_dir, "train", cfg)
    ckpt, log = baselines.pretrained(cfg, train, args.method, args.replicate, device=args.device)
    print(f"{args.method} (replicate {args.replicate}): final training loss {log.loss[-1]:.4f}")
    stage.write_trained(save_classifier, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "method", "data_dir", "out", "log_out", replicate=int)
