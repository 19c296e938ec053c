"""The sinusoid sections of params.yaml: one frozen dataclass per section, and :class:`SinusoidParams`,
all of them with the checks that span sections. ``load`` is the loader every sinusoid stage uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reml.core.config import (
    check_choices,
    check_dpi,
    check_params,
    check_positive,
    check_range,
    check_rate,
    check_seed,
    family_sections,
    read_yaml,
    require,
)
from reml.families import SECTIONS
from reml.methods.config import REML_AGENTS, MamlConfig, PoolConfig, PpoConfig, ReptileConfig

# --------------------------------------------------------------------------- shared sections


@dataclass(frozen=True)
class DistributionConfig:
    """Sinusoid task distribution y = A·sin(x − φ) (Finn et al. 2017, Sec. 5.1)."""

    amplitude: tuple[float, float]  # [min, max] of A, sampled uniformly
    phase: tuple[float, float]  # [min, max] of φ, sampled uniformly
    x_range: tuple[float, float]  # [min, max] of the inputs x, sampled uniformly

    def __post_init__(self) -> None:
        check_range("amplitude", self.amplitude, low=0.0)
        check_range("phase", self.phase)
        check_range("x_range", self.x_range)
        require(self.x_range[0] < self.x_range[1], "x_range", "must have min < max")


@dataclass(frozen=True)
class ModelConfig:
    """The functional MLP every sinusoid method uses (Finn: 1-40-40-1 ReLU)."""

    hidden: tuple[int, ...]  # widths of the hidden layers

    def __post_init__(self) -> None:
        require(len(self.hidden) >= 1, "hidden", "needs at least one hidden layer")
        require(all(h >= 1 for h in self.hidden), "hidden", f"widths must be >= 1, got {list(self.hidden)}")


@dataclass(frozen=True)
class AdaptationConfig:
    """The one test-time fine-tuning routine every method is scored with."""

    optimizer: Literal["sgd", "adam"]  # SGD as in Finn; Adam as in the REML thesis
    steps: int  # gradient steps on the K support points; the query MSE is recorded after each
    shots: tuple[int, ...]  # the K values evaluated (Finn: 5, 10, 20)
    lr_grid: tuple[float, ...]  # step sizes tried on validation tasks by methods that tune theirs

    def __post_init__(self) -> None:
        require(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        require(len(self.shots) >= 1, "shots", "needs at least one K")
        require(all(k >= 1 for k in self.shots), "shots", f"every K must be >= 1, got {list(self.shots)}")
        require(len(set(self.shots)) == len(self.shots), "shots", f"has duplicates: {list(self.shots)}")
        require(len(self.lr_grid) >= 1, "lr_grid", "needs at least one step size")
        require(
            all(lr > 0 and math.isfinite(lr) for lr in self.lr_grid),
            "lr_grid",
            f"step sizes must be finite and > 0, got {list(self.lr_grid)}",
        )


# --------------------------------------------------------------------------- stage sections


@dataclass(frozen=True)
class GenerateTasksConfig:
    """The fixed meta-test set (scored by every method) and the validation set (for tuning)."""

    seed: int
    n_test: int  # test tasks (Finn: 600)
    n_val: int  # validation tasks, used only to tune step sizes, never for scoring
    k_max: int  # support points stored per task; K = k uses the first k
    n_query: int  # query points per task, used only for scoring
    n_unrelated: int  # test tasks per unrelated family (research question 3)

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "n_test", "n_val", "k_max", "n_query", "n_unrelated")
        for name in ("n_test", "n_unrelated"):
            value = getattr(self, name)
            require(value >= 2, name, f"must be >= 2 for a confidence interval, got {value}")


@dataclass(frozen=True)
class TrainScratchConfig:
    """`scratch`: a random initialisation, fine-tuned at test with a step size tuned on validation tasks;
    `scratch_deep` the same with REML's depth (``deep_hidden``), so that depth is not what separates them."""

    seed: int
    deep_hidden: tuple[int, ...]  # hidden widths of scratch_deep: REML's network (input + reml.depth hidden + output)

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        require(len(self.deep_hidden) >= 1 and all(h >= 1 for h in self.deep_hidden), "deep_hidden",
                f"needs at least one hidden width, each >= 1, got {list(self.deep_hidden)}")  # fmt: skip


@dataclass(frozen=True)
class JointRegressionConfig:
    """`pretrained` / `oracle`: one network regressing tasks sampled from the whole distribution."""

    seed: int
    iterations: int  # Adam steps
    tasks_per_batch: int  # tasks sampled per step
    points_per_task: int  # (x, y) points per task per step
    lr: float  # Adam learning rate

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "iterations", "tasks_per_batch", "points_per_task")
        check_rate("lr", self.lr)


@dataclass(frozen=True)
class SinusoidMamlConfig(MamlConfig):
    """MAML / FOMAML on sinusoids: the method's settings and the size of each training task."""

    k_support: int  # support points per training task, the inner loop's data (Finn: K = 10)
    k_query: int  # query points per training task, the meta-objective's data (Finn: K)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "k_support", "k_query")


@dataclass(frozen=True)
class SinusoidReptileConfig(ReptileConfig):
    """Reptile on sinusoids: the method's settings and the size of each training task."""

    k_support: int  # points per training task that the inner SGD runs on
    k_query: int  # held-out points per training task, only for the training curve

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "k_support", "k_query")


@dataclass(frozen=True)
class TrainMamlConfig:
    """The `train_maml` stage: one subsection per variant (a DVC matrix over variants x replicates).

    ``maml_matched`` is MAML at REML's budget: as many training tasks as one REML run composes networks
    for (checked by :class:`SinusoidParams`)."""

    maml: SinusoidMamlConfig
    fomaml: SinusoidMamlConfig
    reptile: SinusoidReptileConfig
    maml_matched: SinusoidMamlConfig


META_VARIANTS = ("maml", "fomaml", "reptile", "maml_matched")  # the fields of TrainMamlConfig
# Not in the research questions, so trained once (replicate 0, stage train_meta_once): Reptile's quick settings
# diverged to NaN in training with seed 8 (replicate 2), which a stable setting has to fix before it is replicated.
SINGLE_RUN = ("fomaml", "reptile")
JOINT_METHODS = ("pretrained", "pretrained_matched", "oracle")  # each trained by its own train_<method> section
SCRATCH_METHODS = ("scratch", "scratch_deep")


REML_ENCODINGS = ("support", "oracle")


# How REML learns (reml.methods.reml.env): `thesis` is the `reml` section as it stands (the thesis's rules);
# each other variant overrides some of its keys (params `reml_variants.<name>`).
REML_VARIANTS = ("thesis", "meta_gradient", "relative", "sgd_inner", "slot_pools", "sgd_slot_pools", "candidate_scores")


def reml_method(agent: str, encoding: str, variant: str = "thesis") -> str:
    """Table name of a REML row: the agent's name, with ``_oracle`` for the oracle task encoding and
    ``_<variant>`` for a variant other than the thesis's rules."""
    name = agent if encoding == "support" else f"{agent}_{encoding}"
    return name if variant == "thesis" else f"{name}_{variant}"


def reml_run(agent: str, encoding: str, variant: str, seed: int) -> str:
    """Name of one train_reml run: its directory under models/sinusoid/reml/ and its DVC matrix key."""
    return f"{agent}-{encoding}-{variant}-{seed}"


REML_METHODS = tuple(reml_method(a, e, v) for v in REML_VARIANTS for e in REML_ENCODINGS for a in REML_AGENTS)
# Ablations of the reference REML row (evaluate_fewshot.reml_reference), from the same trained pools:
# uniformly random valid compositions, and the one composition its agent chose most on validation tasks.
REML_ABLATIONS = ("reml_random", "reml_fixed")
METHOD_NAMES = (*SCRATCH_METHODS, "pretrained", "pretrained_matched", "oracle", *META_VARIANTS, *REML_METHODS,
                *REML_ABLATIONS)  # fmt: skip
ORACLE_METHODS = ("oracle", *(m for m in REML_METHODS if m.endswith("_oracle")))  # read the true task parameters


def split_reml_method(method: str) -> tuple[str, str, str]:
    """Inverse of :func:`reml_method`: (agent, encoding, variant)."""
    for agent in REML_AGENTS:
        for encoding in REML_ENCODINGS:
            for variant in REML_VARIANTS:
                if reml_method(agent, encoding, variant) == method:
                    return agent, encoding, variant
    raise ValueError(f"{method!r} is not a REML method; allowed: {list(REML_METHODS)}")


@dataclass(frozen=True)
class RemlConfig:
    """The composition MDP shared by REML training and evaluation (reml/families/sinusoid/reml.py)."""

    pool: PoolConfig
    depth: int  # hidden layers per network (thesis: 3, so 5 layers with input and output)
    k_query: int  # held-out points of a training task that the reward is measured on
    inner_optimizer: Literal["sgd", "adam"]  # training of the built network at the end of an episode
    inner_lr: float  # thesis code: 0.005
    inner_steps: int  # thesis text: 10; its code: 30
    # terminal; dense (potential-shaped, the same return); relative: ref / (ref + loss), ref the query loss of
    # predicting zero on the same task (removes the task-difficulty variance)
    reward: Literal["terminal", "dense", "relative"]
    reward_scale: float  # reward = 1 / (1 + loss / reward_scale) (terminal, dense)
    write_back: bool  # update the pool at the end of a training episode
    pool_update: Literal["overwrite", "meta_gradient"]  # overwrite: the trained layers (thesis); meta_gradient: an
    # Adam step of the chosen layers on the query loss's gradient after the inner training (Alet et al. 2018)
    blend: float  # overwrite: pool layer <- (1 - blend) * old + blend * trained
    meta_lr: float  # meta_gradient: Adam step size of the pool layers
    first_order: bool  # meta_gradient: the gradient at the adapted weights (no second derivatives)
    slot_pools: bool  # hidden slot s takes only the hidden layers j with j % depth == s - 1 (its own pool)
    candidate_scores: bool  # observation: each candidate layer's support loss after one inner step

    def __post_init__(self) -> None:
        check_positive(self, "depth", "k_query", "inner_steps")
        check_rate("meta_lr", self.meta_lr)
        require(self.depth <= self.pool.n_hidden, "depth", f"{self.depth} exceeds pool.n_hidden = {self.pool.n_hidden}")
        check_rate("inner_lr", self.inner_lr)
        check_rate("reward_scale", self.reward_scale)
        require(0.0 <= self.blend <= 1.0, "blend", f"must be in [0, 1], got {self.blend}")


@dataclass(frozen=True)
class TrainRemlConfig:
    """The `train_reml` stage: a DVC matrix over agents x encodings x variants x replicates (the agent's seed)."""

    agents: tuple[str, ...]
    encodings: tuple[str, ...]
    variants: tuple[str, ...]  # how the pool and the agent learn (REML_VARIANTS; `thesis`: the reml section)
    timesteps: int  # environment steps (an episode is depth + 2 of them)
    checkpoint_every: int  # timesteps between checkpoints (policy zip + pool)
    log_every: int  # timesteps between rows of the training curve
    ppo: PpoConfig

    def __post_init__(self) -> None:
        check_choices("agents", self.agents, REML_AGENTS)
        check_choices("encodings", self.encodings, REML_ENCODINGS)
        check_choices("variants", self.variants, REML_VARIANTS)
        check_positive(self, "timesteps", "checkpoint_every", "log_every")


@dataclass(frozen=True)
class LongFinetuneConfig:
    """The REML thesis's convergence figure: loss per step over a longer fine-tune on test tasks."""

    k: int  # support points
    optimizer: Literal["sgd", "adam"]  # the thesis fine-tunes with Adam
    lr: float  # one step size for every method (thesis code: 0.005)
    steps: int  # thesis figure: 100
    methods: tuple[str, ...]  # a subset of evaluate_fewshot.methods

    def __post_init__(self) -> None:
        check_positive(self, "k", "steps")
        check_rate("lr", self.lr)
        require(len(self.methods) >= 1, "methods", "needs at least one method")


@dataclass(frozen=True)
class EvaluateFewshotConfig:
    """Scoring of every method on the fixed test tasks."""

    methods: tuple[str, ...]  # which methods' checkpoints to score, in table order
    reml_reference: str  # the REML row the research questions and the ablations are about (fixed here, never
    # chosen on test tasks)
    n_examples: int  # test tasks whose fits are drawn in the example figure
    unrelated_k: int  # K of the unrelated-families evaluation (research question 3)
    long_finetune: LongFinetuneConfig

    def __post_init__(self) -> None:
        check_choices("methods", self.methods, METHOD_NAMES)
        require(self.reml_reference in REML_METHODS, "reml_reference",
                f"must be one of {list(REML_METHODS)}, got {self.reml_reference!r}")  # fmt: skip
        require(self.reml_reference in self.methods or not any(m in REML_ABLATIONS for m in self.methods),
                "reml_reference", f"{self.reml_reference!r} must be in evaluate_fewshot.methods: the ablations "
                f"{list(REML_ABLATIONS)} are built from its pools")  # fmt: skip
        require(self.n_examples >= 1, "n_examples", f"must be >= 1, got {self.n_examples}")
        extra = [m for m in self.long_finetune.methods if m not in self.methods]
        require(not extra, "long_finetune.methods", f"{extra} are not in evaluate_fewshot.methods")
        require(self.unrelated_k >= 1, "unrelated_k", f"must be >= 1, got {self.unrelated_k}")


# Research question 4 (where modularity should pay): the families of the training mixture, the sinusoids
# and the unrelated families of research question 3 (reml/families/sinusoid/tasks.py, UNRELATED_FAMILIES).
MIXED_FAMILIES = ("sinusoid", "lines", "quadratics", "sinusoid_large_amplitude", "sinusoid_double_frequency")
MIXED_TRAINED = ("pretrained", "maml", "maml_matched")  # besides REML rows (support encoding)
MIXED_UNTRAINED = ("scratch", "scratch_deep")  # scored on the mixture too, step sizes tuned on its validation tasks


@dataclass(frozen=True)
class TrainMixedConfig:
    """Research question 4: every method trained on a mixture of task families (each task's family drawn
    uniformly from ``families``) and scored on each family's fixed test set (``train_mixed`` and
    ``evaluate_mixed``; reml/families/sinusoid/mixed.py). Each method keeps its own training section
    (``train_pretrained``, ``train_maml.<variant>``, ``train_reml``), so its budget is the one in the main tables."""

    families: tuple[str, ...]  # of MIXED_FAMILIES
    methods: tuple[str, ...]  # trained on the mixture: MIXED_TRAINED and REML rows with the support encoding
    reference: str  # the REML row the paired differences and the ablations (reml_random, reml_fixed) are about
    n_val: int  # validation tasks per family (the mixture's own stream): step sizes, reml_fixed's composition
    k: int  # support points at test (one of adaptation.shots)
    seed: int  # the validation tasks' stream

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "n_val", "k")
        check_choices("families", self.families, MIXED_FAMILIES)
        require(
            len(self.families) >= 2, "families", f"a mixture needs at least two families, got {list(self.families)}"
        )
        allowed = (*MIXED_TRAINED, *(m for m in REML_METHODS if "_oracle" not in m))
        check_choices("methods", self.methods, allowed)
        require(self.reference in self.methods and self.reference in REML_METHODS, "reference",
                f"{self.reference!r} must be a REML row of train_mixed.methods {list(self.methods)}")  # fmt: skip


@dataclass(frozen=True)
class MakeFiguresConfig:
    """Rendering of the seaborn figures (``dpi`` also for the other families' figures)."""

    dpi: int
    example_steps: tuple[int, ...]  # adaptation steps shown in the example-fit figure (Finn Fig. 2)

    def __post_init__(self) -> None:
        check_dpi("dpi", self.dpi)
        require(
            len(self.example_steps) >= 1 and all(s >= 0 for s in self.example_steps),
            "example_steps",
            f"must be non-negative step counts, got {list(self.example_steps)}",
        )


# --------------------------------------------------------------------------- the family's sections


@dataclass(frozen=True)
class SinusoidParams:
    """The sinusoid sections of params.yaml."""

    sinusoid: DistributionConfig
    model: ModelConfig
    adaptation: AdaptationConfig
    replicates: tuple[int, ...]  # every trained method runs once per r: with its section's seed + r (REML: seed r)
    generate_tasks: GenerateTasksConfig
    train_scratch: TrainScratchConfig
    train_pretrained: JointRegressionConfig
    train_pretrained_matched: JointRegressionConfig
    train_oracle: JointRegressionConfig
    train_maml: TrainMamlConfig
    reml: RemlConfig
    reml_variants: dict[str, RemlConfig]  # each variant's reml config: the reml section with its overrides
    train_reml: TrainRemlConfig
    evaluate_fewshot: EvaluateFewshotConfig
    train_mixed: TrainMixedConfig
    make_figures: MakeFiguresConfig

    def __post_init__(self) -> None:
        require(len(self.replicates) >= 1, "replicates", "needs at least one replicate")
        for r in self.replicates:
            check_seed("replicates", r)
        require(len(set(self.replicates)) == len(self.replicates), "replicates",
                f"has duplicates: {list(self.replicates)}")  # fmt: skip
        reml_tasks = self.reml_tasks()
        for key, tasks in (("train_maml.maml_matched", self.training_tasks("maml_matched")),
                           ("train_pretrained_matched", self.training_tasks("pretrained_matched"))):  # fmt: skip
            require(
                tasks == reml_tasks,
                f"{key}.iterations",
                f"trains on {tasks} tasks but one REML run sees {reml_tasks} (train_reml.timesteps / "
                f"(reml.depth + 2)); a matched budget must equal it",
            )
        largest = max(self.adaptation.shots)
        require(
            largest <= self.generate_tasks.k_max,
            "adaptation.shots",
            f"K = {largest} exceeds generate_tasks.k_max = {self.generate_tasks.k_max}",
        )
        require(
            self.evaluate_fewshot.n_examples <= self.generate_tasks.n_test,
            "evaluate_fewshot.n_examples",
            f"{self.evaluate_fewshot.n_examples} exceeds generate_tasks.n_test = {self.generate_tasks.n_test}",
        )
        untrained = [
            m
            for m in self.evaluate_fewshot.methods
            if m in REML_METHODS
            and any(part not in trained for part, trained in zip(split_reml_method(m), (
                self.train_reml.agents, self.train_reml.encodings, self.train_reml.variants), strict=True))
        ]  # fmt: skip
        require(
            not untrained,
            "evaluate_fewshot.methods",
            f"{untrained} are not trained: add their agent, encoding and variant to train_reml.agents, "
            "train_reml.encodings and train_reml.variants",
        )
        unknown = [v for v in self.reml_variants if v not in REML_VARIANTS[1:]]
        require(not unknown, "reml_variants", f"unknown {unknown}; allowed: {list(REML_VARIANTS[1:])}")
        missing = [v for v in self.train_reml.variants if v != "thesis" and v not in self.reml_variants]
        require(not missing, "train_reml.variants", f"{missing} have no overrides in reml_variants")
        require(
            self.evaluate_fewshot.unrelated_k in self.adaptation.shots,
            "evaluate_fewshot.unrelated_k",
            f"K = {self.evaluate_fewshot.unrelated_k} must be one of adaptation.shots {list(self.adaptation.shots)} "
            "(the K values whose fine-tuning step sizes are tuned)",
        )
        for key, k in (("unrelated_k", self.evaluate_fewshot.unrelated_k),
                       ("long_finetune.k", self.evaluate_fewshot.long_finetune.k)):  # fmt: skip
            require(
                k <= self.generate_tasks.k_max,
                f"evaluate_fewshot.{key}",
                f"K = {k} exceeds generate_tasks.k_max = {self.generate_tasks.k_max}",
            )
            require(
                k <= max(self.adaptation.shots) or not any(m in REML_METHODS for m in self.evaluate_fewshot.methods),
                f"evaluate_fewshot.{key}",
                f"K = {k} exceeds the largest of adaptation.shots ({max(self.adaptation.shots)}), "
                "the most support points a REML policy is trained to encode",
            )
        mixed = self.train_mixed
        require(mixed.k in self.adaptation.shots, "train_mixed.k",
                f"K = {mixed.k} must be one of adaptation.shots {list(self.adaptation.shots)}")  # fmt: skip
        require(max(self.adaptation.shots) <= self.generate_tasks.k_max, "train_mixed.k",
                f"the validation tasks store generate_tasks.k_max = {self.generate_tasks.k_max} points")  # fmt: skip
        untrained_mixed = [m for m in mixed.methods if m in REML_METHODS and split_reml_method(m)[2]
                           not in self.train_reml.variants]  # fmt: skip
        require(not untrained_mixed, "train_mixed.methods",
                f"{untrained_mixed} use variants not in train_reml.variants {self.train_reml.variants}")  # fmt: skip
        too_far = [s for s in self.make_figures.example_steps if s > self.adaptation.steps]
        require(
            not too_far, "make_figures.example_steps", f"{too_far} exceed adaptation.steps = {self.adaptation.steps}"
        )

    def runs(self, method: str) -> tuple[int, ...]:
        """The replicates ``method`` is trained over (its table rows average them)."""
        return (0,) if method in SINGLE_RUN else self.replicates

    def reml_for(self, variant: str) -> RemlConfig:
        """The reml config of a variant (``thesis``: the reml section itself)."""
        return self.reml if variant == "thesis" else self.reml_variants[variant]

    def reml_tasks(self) -> int:
        """Training tasks one REML run sees: one per episode, an episode being one step per layer."""
        return self.train_reml.timesteps // (self.reml.depth + 2)

    def training_tasks(self, method: str) -> int:
        """How many training tasks one run of ``method`` sees (0: it never meets one)."""
        if method in SCRATCH_METHODS:
            return 0
        if method in JOINT_METHODS:
            cfg = getattr(self, f"train_{method}")
            return cfg.iterations * cfg.tasks_per_batch
        if method in META_VARIANTS:
            cfg = getattr(self.train_maml, method)
            return cfg.iterations * cfg.meta_batch
        return self.reml_tasks()  # the REML rows and their ablations (from the same pools)


def parse(data: dict[str, Any]) -> SinusoidParams:
    """Validate the sinusoid sections of a params mapping (errors name the key). ``reml_variants`` holds
    overrides of ``reml``; each is checked as the whole config it makes."""
    check_params(data, SECTIONS)
    variants = data.get("reml_variants", {})
    require(isinstance(variants, dict), "reml_variants", f"expected a mapping of variants, got {variants!r}")
    for name, overrides in variants.items():
        require(isinstance(overrides, dict), f"reml_variants.{name}", f"expected a mapping, got {overrides!r}")
    base = data.get("reml", {}) if isinstance(data.get("reml"), dict) else {}
    merged = {name: {**base, **overrides} for name, overrides in variants.items()}
    return family_sections(SinusoidParams, {**data, "reml_variants": merged})


def load(path: str | Path = "params.yaml") -> SinusoidParams:
    return parse(read_yaml(path))
