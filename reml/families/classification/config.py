"""The ``classification`` section of params.yaml (Finn et al. 2017, Sec. 5.2), validated here so that
only the classification stages depend on it; ``load`` is the loader every classification stage uses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reml.core.config import (
    check_choices,
    check_params,
    check_positive,
    check_rate,
    check_seed,
    family_sections,
    figure_dpi,
    from_dict,
    read_yaml,
    require,
)
from reml.families import SECTIONS
from reml.families.classification.nets import ConvNet, MlpNet
from reml.methods.config import META_LEARNERS, REML_AGENTS, MamlConfig, PpoConfig, ReptileConfig

DATASETS = ("glyphs", "omniglot", "miniimagenet")
METHODS = ("scratch", "pretrained", *META_LEARNERS, *REML_AGENTS)
# Methods trained (or, for scratch, drawn) once per replicate of ``classification.replicates``; fomaml and
# reptile run once (replicate 0), and REML's ablations live on the reference agent's pools.
REPLICATED = ("scratch", "pretrained", "pretrained_matched", "maml", "maml_matched")
SINGLE_RUN = ("fomaml", "reptile")
MATCHED = ("pretrained_matched", "maml_matched")  # at REML's training budget (``matched_budget``)
MLP_HIDDEN = (256, 128, 64, 64)  # Finn et al.'s fully connected variant


@dataclass(frozen=True)
class GlyphsConfig:
    """The offline glyph set (reml/families/classification/glyphs.py)."""

    seed: int
    instances: int
    size: int
    scripts: tuple[str, ...]
    dedupe: float
    split: tuple[float, float, float]

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        require(self.instances >= 2, "instances", f"must be >= 2, got {self.instances}")
        require(self.size >= 16, "size", f"must be >= 16 pixels (4 poolings), got {self.size}")
        require(len(self.scripts) > 0, "scripts", "must name at least one script")
        require(0 < self.dedupe <= 1, "dedupe", f"must be in (0, 1], got {self.dedupe}")
        require(min(self.split) > 0, "split", f"every share must be > 0, got {list(self.split)}")
        total = sum(self.split)
        require(abs(total - 1) < 1e-6, "split", f"shares must sum to 1, got {list(self.split)} (sum {total:g})")


@dataclass(frozen=True)
class EvaluateConfig:
    """The fixed test and validation episodes, and the test-time fine-tuning."""

    seed: int
    n_test: int
    n_val: int
    steps: int
    lr_grid: tuple[float, ...]

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "n_test", "n_val", "steps")
        require(bool(self.lr_grid), "lr_grid", "must be a non-empty list of step sizes > 0")
        for lr in self.lr_grid:
            check_rate("lr_grid", lr)


@dataclass(frozen=True)
class PretrainedConfig:
    """`pretrained`: one classifier over every meta-train class, Adam; a fresh N-way head at test."""

    seed: int
    iterations: int
    batch_size: int
    lr: float

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "iterations", "batch_size")
        check_rate("lr", self.lr)


@dataclass(frozen=True)
class ManyWayConfig:
    """Finn et al.'s 20-way Omniglot settings: MAML and FOMAML use these when N >= ``min_ways``."""

    min_ways: int
    inner_lr: float
    inner_steps: int
    meta_batch: int

    def __post_init__(self) -> None:
        check_positive(self, "min_ways", "inner_steps", "meta_batch")
        check_rate("inner_lr", self.inner_lr)


@dataclass(frozen=True)
class BlockPoolConfig:
    """REML's pool of conv blocks (image -> filters, filters -> filters) and linear heads."""

    n_input: int
    n_hidden: int
    n_output: int

    def __post_init__(self) -> None:
        check_positive(self, "n_input", "n_hidden", "n_output")


@dataclass(frozen=True)
class RemlClassificationConfig:
    """REML composing conv nets (reml/families/classification/reml.py), one agent per N and replicate.
    ``reference``: the agent the research question and the ablations are about (fixed before testing)."""

    agents: tuple[str, ...]
    reference: str
    seed: int
    timesteps: int
    pool: BlockPoolConfig
    inner_lr: float
    inner_steps: int
    reward_scale: float
    blend: float

    def __post_init__(self) -> None:
        if self.agents:  # none: classification runs without REML
            check_choices("agents", self.agents, REML_AGENTS)
            require(
                self.reference in self.agents,
                "reference",
                f"must be one of reml.agents {list(self.agents)}, got {self.reference!r}",
            )
        check_seed("seed", self.seed)
        check_positive(self, "timesteps", "inner_steps")
        check_rate("inner_lr", self.inner_lr)
        check_rate("reward_scale", self.reward_scale)
        require(0 <= self.blend <= 1, "blend", f"must be in [0, 1], got {self.blend}")


@dataclass(frozen=True)
class ClassificationConfig:
    """Few-shot classification: data, N-way K-shot settings, the network, and every method's settings."""

    dataset: Literal["glyphs", "omniglot", "miniimagenet"]
    data_dir: str
    glyphs: GlyphsConfig
    rotations: bool
    ways: tuple[int, ...]
    shots: tuple[int, ...]
    n_query: int
    model: Literal["conv", "mlp"]
    filters: int
    evaluate: EvaluateConfig
    replicates: tuple[int, ...]
    pretrained: PretrainedConfig
    pretrained_matched: PretrainedConfig
    maml: MamlConfig
    maml_matched: MamlConfig
    fomaml: MamlConfig
    many_way: ManyWayConfig
    reptile: ReptileConfig
    reml: RemlClassificationConfig

    def __post_init__(self) -> None:
        require(
            self.dataset == "glyphs" or bool(self.data_dir),
            "data_dir",
            f"dataset {self.dataset!r} is read from a local copy: set data_dir to its root "
            "(layouts in docs/classification.md)",
        )
        for name in ("ways", "shots"):
            values = getattr(self, name)
            require(bool(values) and min(values) >= 1, name, f"must be a non-empty list of integers >= 1: {values}")
            require(len(set(values)) == len(values), name, f"must not repeat a value, got {list(values)}")
        require(min(self.ways) >= 2, "ways", f"N-way needs N >= 2, got {list(self.ways)}")
        check_positive(self, "n_query", "filters")
        require(
            bool(self.replicates) and list(self.replicates) == list(range(len(self.replicates))),
            "replicates",
            f"must be 0, 1, ..., R-1 (run r trains with its section's seed + r), got {list(self.replicates)}",
        )
        require(
            self.dataset != "glyphs" or max(self.shots) + self.n_query <= self.glyphs.instances,
            "shots",
            f"K + n_query = {max(self.shots) + self.n_query} exceeds glyphs.instances = {self.glyphs.instances}",
        )
        if self.reml.agents:
            require(
                self.model == "conv",
                "model",
                f"REML composes conv blocks: model must be 'conv' while reml.agents is {list(self.reml.agents)}",
            )
            hidden = ConvNet.n_blocks - 1  # the first block is an input block, the rest hidden
            require(
                self.reml.pool.n_hidden >= hidden,
                "reml.pool.n_hidden",
                f"a conv net has {hidden} hidden blocks and they must be distinct: need >= {hidden}, "
                f"got {self.reml.pool.n_hidden}",
            )

        if self.reml.agents:
            self._check_matched()

    @property
    def reml_episodes(self) -> int:
        """Episodes (composed-and-trained networks) one REML run trains on: one per ``depth + 2`` timesteps."""
        return self.reml.timesteps // (ConvNet.n_blocks + 1)

    def _check_matched(self) -> None:
        """maml_matched meta-trains on as many episodes as REML composes networks; pretrained_matched takes
        one Adam step per REML episode (its batch_size, 40 in the profiles, is a 5-way episode's labelled
        images at mean K 3 + 5 query)."""
        slots = ConvNet.n_blocks + 1
        require(
            self.reml.timesteps % slots == 0,
            "reml.timesteps",
            f"must be a multiple of {slots} (one composed network per {slots} timesteps), got {self.reml.timesteps}",
        )
        m = self.maml_matched
        require(
            m.iterations * m.meta_batch == self.reml_episodes,
            "maml_matched.iterations",
            f"iterations x meta_batch = {m.iterations} x {m.meta_batch} = {m.iterations * m.meta_batch} episodes, "
            f"but REML trains on reml.timesteps / {slots} = {self.reml_episodes}: they must match",
        )
        p = self.pretrained_matched
        require(
            p.iterations == self.reml_episodes,
            "pretrained_matched.iterations",
            f"must be one Adam step per REML training episode, reml.timesteps / {slots} = {self.reml_episodes}, "
            f"got {p.iterations}",
        )

    def runs(self, method: str) -> tuple[int, ...]:
        """The replicates a method is trained (or drawn) for."""
        return (0,) if method in SINGLE_RUN else self.replicates

    def budget(self, method: str, n_way: int, k_shot: int) -> dict[str, int]:
        """What one run of ``method`` trained on for the N-way K-shot setting: episodes and labelled images."""
        if method == "scratch":
            return {"episodes": 0, "images": 0}
        if method in ("pretrained", "pretrained_matched"):
            p = getattr(self, method)
            return {"episodes": 0, "images": p.iterations * p.batch_size}
        if method in (*META_LEARNERS, "maml_matched"):
            m = self.meta_learner(method, n_way)
            episodes = m.iterations * m.meta_batch
            return {"episodes": episodes, "images": episodes * n_way * (k_shot + self.n_query)}
        # REML and its ablations (the same pools): one episode per composed network, K drawn from shots
        mean_k = sum(self.shots) / len(self.shots)
        return {"episodes": self.reml_episodes, "images": round(self.reml_episodes * n_way * (mean_k + self.n_query))}

    @property
    def in_channels(self) -> int:
        return 3 if self.dataset == "miniimagenet" else 1

    @property
    def image_size(self) -> int:
        return {"glyphs": self.glyphs.size, "omniglot": 28, "miniimagenet": 84}[self.dataset]

    def network(self, n_way: int) -> ConvNet | MlpNet:
        if self.model == "mlp":
            return MlpNet(self.in_channels * self.image_size**2, MLP_HIDDEN, n_way)
        return ConvNet(self.in_channels, self.filters, n_way, self.image_size)

    def meta_learner(self, method: str, n_way: int) -> MamlConfig | ReptileConfig:
        """The settings of a meta-learner for N-way episodes (``many_way`` applied to MAML and FOMAML)."""
        cfg = getattr(self, method)
        if method in ("maml", "fomaml") and n_way >= self.many_way.min_ways:
            m = self.many_way
            return dataclasses.replace(cfg, inner_lr=m.inner_lr, inner_steps=m.inner_steps, meta_batch=m.meta_batch)
        return cfg

    def settings(self) -> list[tuple[int, int]]:
        """Every (N, K) evaluated, in table order."""
        return [(n, k) for n in self.ways for k in self.shots]


def setting_name(n_way: int, k_shot: int) -> str:
    return f"{n_way}w{k_shot}s"


@dataclass(frozen=True)
class ClassificationParams:
    """The classification stages' params: their section, the PPO settings of the REML agents, which
    classification shares with the sinusoid REML (``train_reml.ppo``), and the figures' resolution."""

    classification: ClassificationConfig
    reml_ppo: PpoConfig
    dpi: int  # make_figures.dpi, shared by every family's figures


def parse(data: dict[str, Any]) -> ClassificationParams:
    """Validate the classification section of a params mapping (errors name the key)."""
    check_params(data, SECTIONS)
    section = family_sections(_Section, data).classification
    train_reml = data.get("train_reml")
    require(isinstance(train_reml, dict) and "ppo" in train_reml, "train_reml.ppo", "missing (the REML agents' PPO)")
    return ClassificationParams(section, from_dict(PpoConfig, train_reml["ppo"], "train_reml.ppo"), figure_dpi(data))


@dataclass(frozen=True)
class _Section:
    classification: ClassificationConfig


def load(path: str | Path = "params.yaml") -> ClassificationParams:
    return parse(read_yaml(path))
