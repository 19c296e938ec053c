"""The task families: sinusoid regression, few-shot classification, meta-RL.

Every family package has the same modules (config, tasks, checkpoint, baselines, reml, evaluate,
figures, report), so reading one teaches where everything of the others is. ``SECTIONS`` names the
top-level sections of params.yaml each family owns; every family's loader checks the file against
it, so a section that no family owns (a typo) is an error. Nothing is imported here: a stage loads
only its own family's code.
"""

SECTIONS: dict[str, tuple[str, ...]] = {
    "sinusoid": (
        "sinusoid",
        "model",
        "adaptation",
        "replicates",
        "generate_tasks",
        "train_scratch",
        "train_pretrained",
        "train_pretrained_matched",
        "train_oracle",
        "train_maml",
        "reml",
        "reml_variants",
        "train_reml",
        "evaluate_fewshot",
        "train_mixed",
        "make_figures",
    ),
    "classification": ("classification",),
    "rl": ("rl",),
}
