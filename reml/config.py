"""Typed, validated configuration: one frozen dataclass per section of ``params.yaml``.

Every stage parses the whole file with :func:`load_params` (so a typo anywhere is caught before any
compute), then reads only its own section and the shared sections it lists in ``dvc.yaml``.
Errors are :class:`ConfigError` whose message starts with the dotted key, e.g.
``train_pretrained.lr: must be > 0, got -0.1``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A value in params.yaml is missing, unknown, of the wrong type or out of range."""


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _check_range(key: str, value: tuple[float, float], low: float | None = None) -> None:
    lo, hi = value
    _require(lo <= hi, key, f"min {lo} > max {hi}; give [min, max] with min <= max")
    if low is not None:
        _require(lo >= low, key, f"min must be >= {low}, got {lo}")


def _check_seed(key: str, seed: int) -> None:
    _require(seed >= 0, key, f"must be a non-negative integer, got {seed}")


# --------------------------------------------------------------------------- shared sections


@dataclass(frozen=True)
class SinusoidConfig:
    """Sinusoid task distribution y = A·sin(x − φ) (Finn et al. 2017, Sec. 5.1)."""

    amplitude: tuple[float, float]  # [min, max] of A, sampled uniformly
    phase: tuple[float, float]  # [min, max] of φ, sampled uniformly
    x_range: tuple[float, float]  # [min, max] of the inputs x, sampled uniformly

    def __post_init__(self) -> None:
        _check_range("amplitude", self.amplitude, low=0.0)
        _check_range("phase", self.phase)
        _check_range("x_range", self.x_range)
        _require(self.x_range[0] < self.x_range[1], "x_range", "must have min < max")


@dataclass(frozen=True)
class ModelConfig:
    """The functional MLP every sinusoid method uses (Finn: 1-40-40-1 ReLU)."""

    hidden: tuple[int, ...]  # widths of the hidden layers

    def __post_init__(self) -> None:
        _require(len(self.hidden) >= 1, "hidden", "needs at least one hidden layer")
        _require(all(h >= 1 for h in self.hidden), "hidden", f"widths must be >= 1, got {list(self.hidden)}")


@dataclass(frozen=True)
class AdaptationConfig:
    """The one test-time fine-tuning routine every method is scored with."""

    optimizer: Literal["sgd", "adam"]  # SGD as in Finn; Adam as in the REML thesis
    steps: int  # gradient steps on the K support points; the query MSE is recorded after each
    shots: tuple[int, ...]  # the K values evaluated (Finn: 5, 10, 20)
    lr_grid: tuple[float, ...]  # step sizes tried on validation tasks by methods that tune theirs

    def __post_init__(self) -> None:
        _require(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        _require(len(self.shots) >= 1, "shots", "needs at least one K")
        _require(all(k >= 1 for k in self.shots), "shots", f"every K must be >= 1, got {list(self.shots)}")
        _require(len(set(self.shots)) == len(self.shots), "shots", f"has duplicates: {list(self.shots)}")
        _require(len(self.lr_grid) >= 1, "lr_grid", "needs at least one step size")
        _require(
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
        _check_seed("seed", self.seed)
        for name in ("n_test", "n_val", "k_max", "n_query", "n_unrelated"):
            value = getattr(self, name)
            _require(value >= 1, name, f"must be >= 1, got {value}")
        for name in ("n_test", "n_unrelated"):
            value = getattr(self, name)
            _require(value >= 2, name, f"must be >= 2 for a confidence interval, got {value}")


@dataclass(frozen=True)
class TrainScratchConfig:
    """`scratch`: a random initialisation, fine-tuned at test with a step size tuned on validation tasks."""

    seed: int

    def __post_init__(self) -> None:
        _check_seed("seed", self.seed)


@dataclass(frozen=True)
class JointRegressionConfig:
    """`pretrained` / `oracle`: one network regressing tasks sampled from the whole distribution."""

    seed: int
    iterations: int  # Adam steps
    tasks_per_batch: int  # tasks sampled per step
    points_per_task: int  # (x, y) points per task per step
    lr: float  # Adam learning rate

    def __post_init__(self) -> None:
        _check_seed("seed", self.seed)
        for name in ("iterations", "tasks_per_batch", "points_per_task"):
            value = getattr(self, name)
            _require(value >= 1, name, f"must be >= 1, got {value}")
        _require(self.lr > 0 and math.isfinite(self.lr), "lr", f"must be > 0, got {self.lr}")


def _check_positive(cfg: object, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        _require(value >= 1, name, f"must be >= 1, got {value}")


def _check_rate(name: str, value: float) -> None:
    _require(value > 0 and math.isfinite(value), name, f"must be > 0, got {value}")


@dataclass(frozen=True)
class MamlConfig:
    """MAML / first-order MAML (Finn et al. 2017, Alg. 2); α is also the test-time step size."""

    seed: int
    iterations: int  # meta-updates (Finn: 70,000)
    meta_batch: int  # tasks per meta-update (Finn: 25)
    k_support: int  # support points per training task, the inner loop's data (Finn: K = 10)
    k_query: int  # query points per training task, the meta-objective's data (Finn: K)
    inner_lr: float  # α (Finn's paper: 0.01; the official code's flag default: 0.001)
    inner_steps: int  # inner SGD steps during meta-training (Finn: 1)
    meta_lr: float  # Adam step size of the meta-update (Finn: 0.001)
    first_order: bool  # drop the second-order terms (FOMAML)

    def __post_init__(self) -> None:
        _check_seed("seed", self.seed)
        _check_positive(self, "iterations", "meta_batch", "k_support", "k_query", "inner_steps")
        _check_rate("inner_lr", self.inner_lr)
        _check_rate("meta_lr", self.meta_lr)


@dataclass(frozen=True)
class ReptileConfig:
    """Reptile (Nichol et al. 2018, batched Alg. 2); its inner step size is also the test-time one."""

    seed: int
    iterations: int  # meta-updates
    meta_batch: int  # tasks per meta-update
    k_support: int  # points per training task that the inner SGD runs on
    k_query: int  # held-out points per training task, only for the training curve
    inner_lr: float  # inner SGD step size
    inner_steps: int  # inner SGD steps per task
    outer_lr: float  # ε at the start; annealed linearly to 0

    def __post_init__(self) -> None:
        _check_seed("seed", self.seed)
        _check_positive(self, "iterations", "meta_batch", "k_support", "k_query", "inner_steps")
        _check_rate("inner_lr", self.inner_lr)
        _require(0 < self.outer_lr <= 1, "outer_lr", f"must be in (0, 1], got {self.outer_lr}")


@dataclass(frozen=True)
class TrainMamlConfig:
    """The `train_maml` stage: one subsection per variant (a DVC matrix over them)."""

    maml: MamlConfig
    fomaml: MamlConfig
    reptile: ReptileConfig


META_LEARNERS = ("maml", "fomaml", "reptile")
REML_AGENTS = ("reml_ppo", "reml_maskable", "reml_lstm")  # SB3 PPO, sb3-contrib MaskablePPO, RecurrentPPO
REML_ENCODINGS = ("support", "oracle")


def reml_method(agent: str, encoding: str) -> str:
    """Table name of a REML variant: the agent's name, with ``_oracle`` for the oracle task encoding."""
    return agent if encoding == "support" else f"{agent}_{encoding}"


REML_METHODS = tuple(reml_method(a, e) for e in REML_ENCODINGS for a in REML_AGENTS)
METHOD_NAMES = ("scratch", "pretrained", "oracle", *META_LEARNERS, *REML_METHODS)


def split_reml_method(method: str) -> tuple[str, str]:
    """Inverse of :func:`reml_method`: (agent, encoding)."""
    for agent in REML_AGENTS:
        for encoding in REML_ENCODINGS:
            if reml_method(agent, encoding) == method:
                return agent, encoding
    raise ValueError(f"{method!r} is not a REML method; allowed: {list(REML_METHODS)}")


@dataclass(frozen=True)
class PoolConfig:
    """The REML layer pool (thesis: 40-wide layers, many more hidden layers than one network uses)."""

    width: int  # units of every layer's output (but the output layers')
    n_input: int  # input layers (1 -> width)
    n_hidden: int  # hidden layers (width -> width)
    n_output: int  # output layers (width -> 1)

    def __post_init__(self) -> None:
        _check_positive(self, "width", "n_input", "n_hidden", "n_output")


@dataclass(frozen=True)
class RemlConfig:
    """The composition MDP shared by REML training and evaluation (reml/compose_env.py)."""

    pool: PoolConfig
    depth: int  # hidden layers per network (thesis: 3, so 5 layers with input and output)
    k_query: int  # held-out points of a training task that the reward is measured on
    inner_optimizer: Literal["sgd", "adam"]  # training of the built network at the end of an episode
    inner_lr: float  # thesis code: 0.005
    inner_steps: int  # thesis text: 10; its code: 30
    reward: Literal["terminal", "dense"]  # terminal, or potential-shaped with the same return
    reward_scale: float  # reward = 1 / (1 + loss / reward_scale)
    write_back: bool  # write the trained layers back into the pool
    blend: float  # pool layer <- (1 - blend) * old + blend * trained

    def __post_init__(self) -> None:
        _check_positive(self, "depth", "k_query", "inner_steps")
        _require(
            self.depth <= self.pool.n_hidden, "depth", f"{self.depth} exceeds pool.n_hidden = {self.pool.n_hidden}"
        )
        _check_rate("inner_lr", self.inner_lr)
        _check_rate("reward_scale", self.reward_scale)
        _require(0.0 <= self.blend <= 1.0, "blend", f"must be in [0, 1], got {self.blend}")


@dataclass(frozen=True)
class PpoConfig:
    """PPO hyperparameters shared by the three agents (thesis: lr 3e-4, clip 0.2; SB3 defaults otherwise)."""

    learning_rate: float
    clip_range: float
    n_steps: int  # environment steps per rollout
    batch_size: int  # minibatch size of the PPO update
    n_epochs: int  # passes over each rollout
    gamma: float  # discount (an episode is only depth + 2 steps)
    ent_coef: float  # entropy bonus

    def __post_init__(self) -> None:
        _check_rate("learning_rate", self.learning_rate)
        _require(0 < self.clip_range < 1, "clip_range", f"must be in (0, 1), got {self.clip_range}")
        _check_positive(self, "n_steps", "batch_size", "n_epochs")
        _require(self.batch_size <= self.n_steps, "batch_size", f"{self.batch_size} exceeds n_steps = {self.n_steps}")
        _require(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        _require(self.ent_coef >= 0, "ent_coef", f"must be >= 0, got {self.ent_coef}")


@dataclass(frozen=True)
class TrainRemlConfig:
    """The `train_reml` stage: a DVC matrix over agents x encodings x seeds."""

    agents: tuple[str, ...]
    encodings: tuple[str, ...]
    seeds: tuple[int, ...]  # one run per seed; the evaluation averages each test task's loss over seeds
    timesteps: int  # environment steps (an episode is depth + 2 of them)
    checkpoint_every: int  # timesteps between checkpoints (policy zip + pool)
    log_every: int  # timesteps between rows of the training curve
    ppo: PpoConfig

    def __post_init__(self) -> None:
        for name, allowed in (("agents", REML_AGENTS), ("encodings", REML_ENCODINGS)):
            values = getattr(self, name)
            _require(len(values) >= 1, name, "needs at least one entry")
            unknown = [v for v in values if v not in allowed]
            _require(not unknown, name, f"unknown {unknown}; allowed: {list(allowed)}")
            _require(len(set(values)) == len(values), name, f"has duplicates: {list(values)}")
        _require(len(self.seeds) >= 1, "seeds", "needs at least one seed")
        for seed in self.seeds:
            _check_seed("seeds", seed)
        _require(len(set(self.seeds)) == len(self.seeds), "seeds", f"has duplicates: {list(self.seeds)}")
        _check_positive(self, "timesteps", "checkpoint_every", "log_every")


@dataclass(frozen=True)
class LongFinetuneConfig:
    """The REML thesis's convergence figure: loss per step over a longer fine-tune on test tasks."""

    k: int  # support points
    optimizer: Literal["sgd", "adam"]  # the thesis fine-tunes with Adam
    lr: float  # one step size for every method (thesis code: 0.005)
    steps: int  # thesis figure: 100
    methods: tuple[str, ...]  # a subset of evaluate_fewshot.methods

    def __post_init__(self) -> None:
        _check_positive(self, "k", "steps")
        _check_rate("lr", self.lr)
        _require(len(self.methods) >= 1, "methods", "needs at least one method")


ORACLE_METHODS = ("oracle", *(m for m in REML_METHODS if m.endswith("_oracle")))  # read the true task parameters


@dataclass(frozen=True)
class EvaluateFewshotConfig:
    """Scoring of every method on the fixed test tasks."""

    methods: tuple[str, ...]  # which methods' checkpoints to score, in table order
    n_examples: int  # test tasks whose fits are drawn in the example figure
    unrelated_k: int  # K of the unrelated-families evaluation (research question 3)
    long_finetune: LongFinetuneConfig

    def __post_init__(self) -> None:
        _require(len(self.methods) >= 1, "methods", "needs at least one method")
        unknown = [m for m in self.methods if m not in METHOD_NAMES]
        _require(not unknown, "methods", f"unknown {unknown}; allowed: {list(METHOD_NAMES)}")
        _require(len(set(self.methods)) == len(self.methods), "methods", f"has duplicates: {list(self.methods)}")
        _require(self.n_examples >= 1, "n_examples", f"must be >= 1, got {self.n_examples}")
        extra = [m for m in self.long_finetune.methods if m not in self.methods]
        _require(not extra, "long_finetune.methods", f"{extra} are not in evaluate_fewshot.methods")
        _require(self.unrelated_k >= 1, "unrelated_k", f"must be >= 1, got {self.unrelated_k}")


@dataclass(frozen=True)
class MakeFiguresConfig:
    """Rendering of the seaborn figures."""

    dpi: int
    example_steps: tuple[int, ...]  # adaptation steps shown in the example-fit figure (Finn Fig. 2)

    def __post_init__(self) -> None:
        _require(20 <= self.dpi <= 600, "dpi", f"must be in [20, 600], got {self.dpi}")
        _require(
            len(self.example_steps) >= 1 and all(s >= 0 for s in self.example_steps),
            "example_steps",
            f"must be non-negative step counts, got {list(self.example_steps)}",
        )


PROFILES = ("quick", "paper", "tiny")


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml."""

    profile: Literal["quick", "paper", "tiny"]  # which profile these values came from (see profiles/)
    reports_dir: str  # where committed results go: reports/ for quick, reports/paper for paper
    sinusoid: SinusoidConfig
    model: ModelConfig
    adaptation: AdaptationConfig
    generate_tasks: GenerateTasksConfig
    train_scratch: TrainScratchConfig
    train_pretrained: JointRegressionConfig
    train_oracle: JointRegressionConfig
    train_maml: TrainMamlConfig
    reml: RemlConfig
    train_reml: TrainRemlConfig
    evaluate_fewshot: EvaluateFewshotConfig
    make_figures: MakeFiguresConfig
    # Sections validated by their own modules, which only their stages import, so editing them never
    # reruns the sinusoid stages: few-shot classification (issue 5, reml.classification) and meta-RL
    # (issue 6, reml.rl.config).
    classification: dict
    rl: dict

    def __post_init__(self) -> None:
        _require(
            bool(self.reports_dir) and not Path(self.reports_dir).is_absolute(),
            "reports_dir",
            f"must be a relative path inside the repository, got {self.reports_dir!r}",
        )
        largest = max(self.adaptation.shots)
        _require(
            largest <= self.generate_tasks.k_max,
            "adaptation.shots",
            f"K = {largest} exceeds generate_tasks.k_max = {self.generate_tasks.k_max}",
        )
        _require(
            self.evaluate_fewshot.n_examples <= self.generate_tasks.n_test,
            "evaluate_fewshot.n_examples",
            f"{self.evaluate_fewshot.n_examples} exceeds generate_tasks.n_test = {self.generate_tasks.n_test}",
        )
        untrained = [
            m
            for m in self.evaluate_fewshot.methods
            if m in REML_METHODS
            and (split_reml_method(m)[0] not in self.train_reml.agents
                 or split_reml_method(m)[1] not in self.train_reml.encodings)
        ]  # fmt: skip
        _require(
            not untrained,
            "evaluate_fewshot.methods",
            f"{untrained} are not trained: add their agent to train_reml.agents and encoding to train_reml.encodings",
        )
        _require(
            self.evaluate_fewshot.unrelated_k in self.adaptation.shots,
            "evaluate_fewshot.unrelated_k",
            f"K = {self.evaluate_fewshot.unrelated_k} must be one of adaptation.shots {list(self.adaptation.shots)} "
            "(the K values whose fine-tuning step sizes are tuned)",
        )
        for key, k in (("unrelated_k", self.evaluate_fewshot.unrelated_k),
                       ("long_finetune.k", self.evaluate_fewshot.long_finetune.k)):  # fmt: skip
            _require(
                k <= self.generate_tasks.k_max,
                f"evaluate_fewshot.{key}",
                f"K = {k} exceeds generate_tasks.k_max = {self.generate_tasks.k_max}",
            )
            _require(
                k <= max(self.adaptation.shots) or not any(m in REML_METHODS for m in self.evaluate_fewshot.methods),
                f"evaluate_fewshot.{key}",
                f"K = {k} exceeds the largest of adaptation.shots ({max(self.adaptation.shots)}), "
                "the most support points a REML policy is trained to encode",
            )
        too_far = [s for s in self.make_figures.example_steps if s > self.adaptation.steps]
        _require(
            not too_far,
            "make_figures.example_steps",
            f"{too_far} exceed adaptation.steps = {self.adaptation.steps}",
        )


# --------------------------------------------------------------------------- parsing


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        _require(value in allowed, key, f"got {value!r}; allowed: {list(allowed)}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        _require(isinstance(value, list | tuple), key, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        _require(len(value) == len(args), key, f"expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _require(ok, key, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        _require(ok, key, f"expected an integer, got {value!r}")
        return value
    if tp is str:
        _require(isinstance(value, str), key, f"expected a string, got {value!r}")
        return value
    if tp is bool:
        _require(isinstance(value, bool), key, f"expected true or false, got {value!r}")
        return value
    if tp is dict:  # a section validated by its own module (see Params.classification)
        _require(isinstance(value, dict), key, f"expected a mapping, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def from_dict(cls: type[T], data: Any, key: str) -> T:
    """Build the dataclass ``cls`` from a parsed YAML mapping, rejecting unknown or missing keys."""
    _require(isinstance(data, dict), key, f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for name in data:
        _require(name in names, f"{key}.{name}" if key else name, f"unknown key; allowed keys: {', '.join(names)}")
    for name in names:
        _require(name in data, f"{key}.{name}" if key else name, "missing (every key must be given in params.yaml)")
    kwargs = {n: _coerce(hints[n], data[n], f"{key}.{n}" if key else n) for n in names}
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{key}.{err}" if key else str(err)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found (run from the repository root)")
    with path.open() as f:
        data = yaml.safe_load(f)
    return from_dict(Params, data, "")


def to_dict(config: Any) -> Any:
    """A plain, YAML/JSON-friendly copy of a config (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, tuple | list):
        return [to_dict(v) for v in config]
    return config
