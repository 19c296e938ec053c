"""The ``rl`` section of params.yaml (meta-RL, Finn et al. 2017, Sec. 5.3), validated here so that only
the RL stages depend on it; ``load`` is the loader every RL stage uses. Every error names the key and
what is allowed, before any rollout."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reml.core.config import (
    check_params,
    check_positive,
    check_rate,
    check_seed,
    family_sections,
    figure_dpi,
    read_yaml,
    require,
)
from reml.families import SECTIONS
from reml.methods.config import REML_AGENTS, PoolConfig, PpoConfig

RL_FAMILIES = ("navigation2d", "cheetah_vel", "cheetah_dir", "ant_vel", "ant_dir")

BASELINES = ("scratch", "pretrained", "oracle", "maml_trpo")  # then the REML agent, named by rl.reml.agent
TRAINED = ("pretrained", "oracle", "maml_trpo")  # baselines with a training stage (train_maml_trpo, train_rl_ppo)
N_SLOTS = 3  # REML's policy layers, one agent step each: input, hidden, output (reml/families/rl/reml.py)


@dataclass(frozen=True)
class SamplerConfig:
    workers: int  # processes stepping the environments (gymnasium AsyncVectorEnv); 1 = in-process
    n_envs: int  # environments stepped together (all workers); more episodes run in rounds
    # Pin each worker process to its own core (Linux): true, false, or "auto" = when the workers are
    # exactly as many as the cores this process may use. Speed only; results never depend on it.
    pin_workers: Literal[True, False, "auto"]

    def __post_init__(self) -> None:
        require(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        require(self.n_envs >= self.workers and self.n_envs % self.workers == 0, "n_envs",
                 f"must be a multiple of workers ({self.workers}), got {self.n_envs}")  # fmt: skip
        require(isinstance(self.pin_workers, bool) or self.pin_workers == "auto", "pin_workers",
                 f"got {self.pin_workers!r}; allowed: true, false, auto")  # fmt: skip
        require(self.pin_workers is not True or hasattr(os, "sched_setaffinity"), "pin_workers",
                 "true needs os.sched_setaffinity (Linux); use auto or false on this system")  # fmt: skip

    def envs_for(self, episodes: int) -> int:
        """Environments for a job of ``episodes`` episodes: at most ``n_envs``, a multiple of ``workers``.
        Results depend only on min(n_envs, episodes) (the batch the policy sees), never on ``workers``."""
        n = min(self.n_envs, episodes)
        return -(-n // self.workers) * self.workers


@dataclass(frozen=True)
class MamlTrpoConfig:
    """Shared MAML-TRPO settings (Finn et al.; pytorch-maml-rl's TRPO constants)."""

    seed: int
    inner_lr: float  # alpha of the one inner REINFORCE step (Finn: 0.1)
    first_order: bool
    max_kl: float  # TRPO's KL radius (Finn: 0.01)
    cg_iters: int
    cg_damping: float
    ls_steps: int  # backtracking line-search steps
    ls_ratio: float  # step shrink factor per backtrack
    # torch threads for the meta-update (the sampler's workers wait meanwhile); results depend on it
    threads: int

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_rate("inner_lr", self.inner_lr)
        check_rate("max_kl", self.max_kl)
        check_positive(self, "cg_iters", "ls_steps", "threads")
        require(self.cg_damping >= 0, "cg_damping", f"must be >= 0, got {self.cg_damping}")
        require(0 < self.ls_ratio < 1, "ls_ratio", f"must be in (0, 1), got {self.ls_ratio}")


@dataclass(frozen=True)
class RLPpoConfig:
    """SB3 PPO for the pretrained and oracle policies (the same 100-100 ReLU Gaussian policy)."""

    seed: int
    n_steps: int  # rollout length per PPO update
    batch_size: int
    n_epochs: int
    learning_rate: float

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "n_steps", "batch_size", "n_epochs")
        check_rate("learning_rate", self.learning_rate)


@dataclass(frozen=True)
class FamilyConfig:
    """Budgets for one task family."""

    iterations: int  # MAML-TRPO meta-iterations (Finn: up to 500)
    meta_batch: int  # tasks per meta-iteration (Finn: 20 navigation, 40 locomotion)
    rollouts: int  # episodes per task per step, in training (Finn: 20)
    ppo_timesteps: int  # environment steps for the pretrained and the oracle policy each
    reml_episodes: int  # REML composition episodes in training (each runs 2 + inner_steps batches of rollouts)
    return_scale: float  # REML reward: sigmoid((return - probe return) / return_scale)
    test_rollouts: int  # episodes per test task per step (Finn: 20; 40 for ant_dir)

    def __post_init__(self) -> None:
        check_positive(self, "iterations", "meta_batch", "rollouts", "ppo_timesteps", "reml_episodes", "test_rollouts")
        check_rate("return_scale", self.return_scale)


@dataclass(frozen=True)
class RemlRLConfig:
    """REML for RL (reml/families/rl/reml.py): the agent, its pool of policy layers, the inner training."""

    agent: str  # reml_ppo | reml_maskable | reml_lstm (reml/methods/reml/agents.py)
    seed: int
    pool: PoolConfig  # width = the policy's hidden width (Finn: 100)
    inner_lr: float  # step size of the inner REINFORCE steps (Finn's test-time alpha: 0.1)
    inner_steps: int
    blend: float  # write-back: pool layer <- (1 - blend) old + blend trained
    ppo: PpoConfig

    def __post_init__(self) -> None:
        require(self.agent in REML_AGENTS, "agent", f"must be one of {list(REML_AGENTS)}, got {self.agent!r}")
        check_seed("seed", self.seed)
        check_rate("inner_lr", self.inner_lr)
        check_positive(self, "inner_steps")
        require(0 <= self.blend <= 1, "blend", f"must be in [0, 1], got {self.blend}")


@dataclass(frozen=True)
class RLEvaluateConfig:
    seed: int
    n_test: int  # held-out test tasks per family (Finn: 40)
    step_sizes: tuple[float, ...]  # one per test-time policy-gradient step (Finn: 0.1, then 0.05)

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        require(self.n_test >= 2, "n_test", f"must be >= 2 (for a confidence interval), got {self.n_test}")
        require(bool(self.step_sizes), "step_sizes", "must list at least one step size")
        for lr in self.step_sizes:
            check_rate("step_sizes", lr)


@dataclass(frozen=True)
class RLConfig:
    run: tuple[str, ...]  # the families trained and evaluated, in table order
    gamma: float  # discount of the policy-gradient returns (Finn: 0.99)
    sampler: SamplerConfig
    maml_trpo: MamlTrpoConfig
    ppo: RLPpoConfig
    reml: RemlRLConfig
    evaluate: RLEvaluateConfig
    families: dict[str, FamilyConfig]  # family name -> its budgets

    def __post_init__(self) -> None:
        require(bool(self.families), "families", f"must map one or more of {list(RL_FAMILIES)} to their budgets")
        unknown = [f for f in self.families if f not in RL_FAMILIES]
        require(not unknown, "families", f"unknown {unknown}; allowed: {list(RL_FAMILIES)}")
        require(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        require(bool(self.run) and len(set(self.run)) == len(self.run), "run",
                 f"must list one or more distinct families, got {list(self.run)}")  # fmt: skip
        missing = [f for f in self.run if f not in self.families]
        require(not missing, "run", f"{missing} have no budget under rl.families ({sorted(self.families)})")
        # SB3 trains the REML agent in whole rollouts of reml.ppo.n_steps agent steps (3 per composition):
        # any other count would silently run more compositions than asked for.
        per_rollout = self.reml.ppo.n_steps // math.gcd(self.reml.ppo.n_steps, N_SLOTS)
        for name, budget in self.families.items():
            n = budget.reml_episodes
            require(n % per_rollout == 0, f"families.{name}.reml_episodes",
                     f"must be a multiple of {per_rollout} ({N_SLOTS} agent steps per composition, in rollouts of "
                     f"rl.reml.ppo.n_steps = {self.reml.ppo.n_steps}), got {n}; e.g. "
                     f"{max(per_rollout, n - n % per_rollout)} or {n - n % per_rollout + per_rollout}")  # fmt: skip

    def family(self, name: str) -> FamilyConfig:
        return self.families[name]

    @property
    def methods(self) -> tuple[str, ...]:
        """Every evaluated method, in table order: the baselines, then the REML agent."""
        return (*BASELINES, self.reml.agent)


@dataclass(frozen=True)
class RLParams:
    """The meta-RL stages' params: the ``rl`` section, and the figures' resolution (``make_figures.dpi``)."""

    rl: RLConfig
    dpi: int


@dataclass(frozen=True)
class _Section:
    rl: RLConfig


def parse(data: dict[str, Any]) -> RLParams:
    """Validate the rl section of a params mapping (errors name the key)."""
    check_params(data, SECTIONS)
    return RLParams(family_sections(_Section, data).rl, figure_dpi(data))


def load(path: str | Path = "params.yaml") -> RLParams:
    return parse(read_yaml(path))
