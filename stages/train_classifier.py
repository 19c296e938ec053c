"""Stage train_classifier: meta-train MAML / FOMAML / Reptile for one N-way K-shot setting, or train the
``pretrained`` classifier on every meta-train class (one for all settings)."""

from baselines.classifier import train_classifier
from baselines.maml import train_maml
from baselines.reptile import train_reptile
from reml import stage
from reml.classification import (
    ClassifierCheckpoint,
    EpisodeDistribution,
    classification_config,
    load_split,
    save_classifier,
)
from reml.config import to_dict
from reml.convnet import cross_entropy
from reml.seeding import generator

METHODS = ("pretrained", "maml", "fomaml", "reptile")


def run(args, params):
    cfg = classification_config(params)
    train = load_split(args.data_dir, "train", cfg)
    if args.method == "pretrained":
        p = cfg.pretrained
        model = cfg.network(train.n_classes)
        trained, log = train_classifier(
            model, train, p.iterations, p.batch_size, p.lr, generator(p.seed, "cls/pretrained")
        )
        ckpt = ClassifierCheckpoint("pretrained", train.n_classes, trained, {}, to_dict(p))
    else:
        if args.ways is None or args.shots is None:
            raise SystemExit("error: --ways and --shots are required for meta-learners")
        m = cfg.meta_learner(args.method, args.ways)
        model = cfg.network(args.ways)
        distribution = EpisodeDistribution(train, args.ways)
        rng = generator(m.seed, f"cls/{args.method}/{args.ways}w{args.shots}s")
        common = dict(iterations=m.iterations, meta_batch=m.meta_batch, k_support=args.shots, k_query=cfg.n_query,
                      inner_lr=m.inner_lr, inner_steps=m.inner_steps, generator=rng,
                      log_every=max(m.iterations // 50, 1),
                      desc=f"{args.method} {args.ways}w{args.shots}s", loss=cross_entropy)  # fmt: skip
        if args.method == "reptile":
            trained, log = train_reptile(model, distribution, outer_lr=m.outer_lr, **common)
        else:
            trained, log = train_maml(model, distribution, meta_lr=m.meta_lr, first_order=m.first_order, **common)
        ckpt = ClassifierCheckpoint(args.method, args.ways, trained, {args.shots: m.inner_lr}, to_dict(m))
    print(f"{args.method}: final training loss {log.loss[-1]:.4f}")
    save_classifier(args.out, ckpt)
    log.write(args.log_out)
    stage.wrote(args.out, args.log_out)


if __name__ == "__main__":
    p = stage.parser(__doc__)
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--ways", type=int, help="N (meta-learners)")
    p.add_argument("--shots", type=int, help="K (meta-learners)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--log-out", required=True)
    stage.main(run, p)
