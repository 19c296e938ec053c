"""Stage train_classifier (a matrix over fomaml / reptile x N x K): meta-train FOMAML or Reptile for one
N-way K-shot classification setting, once (replicate 0; MAML and maml_matched: train_classifier_replicated)."""

from reml.families.classification import meta_stage
from reml.families.classification.config import SINGLE_RUN

if __name__ == "__main__":
    meta_stage.main(__doc__, SINGLE_RUN, "train_classifier")
