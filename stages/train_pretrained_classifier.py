"""Stage train_pretrained_classifier: the ``pretrained`` classifier, trained on every meta-train class
at once (one for all N-way K-shot settings; a fresh N-way head at test)."""

from reml.core import stage
from reml.families.classification import baselines, config
from reml.families.classification.checkpoint import save_classifier
from reml.families.classification.data import load_split


def run(args, params: config.ClassificationParams) -> None:
    cfg = params.classification
    ckpt, log = baselines.pretrained(cfg, load_split(args.data_dir, "train", cfg), device=args.device)
    print(f"pretrained: final training loss {log.loss[-1]:.4f}")
    stage.write_trained(save_classifier, ckpt, log, args)


if __name__ == "__main__":
    stage.main(run, __doc__, config.load, "data_dir", "out", "log_out")
