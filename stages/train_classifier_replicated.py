"""Stage train_classifier_replicated (a matrix over maml / maml_matched x N x K x replicates): meta-train
MAML, or maml_matched (MAML at REML's number of training episodes), for one N-way K-shot setting, once per
replicate r with its section's seed + r."""

from reml.families.classification import meta_stage

if __name__ == "__main__":
    meta_stage.main(__doc__, ("maml", "maml_matched"), "train_classifier_replicated")
