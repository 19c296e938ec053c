"""The ``rl`` section of params.yaml (meta-RL, Finn et al. 2017, Sec. 5.3), validated here so that only
the RL stages depend on it. Every error names the key and what is allowed, before any rollout."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

from reml.config import REML_AGENTS, Params, PoolConfig, PpoConfig, _check_seed, _require, from_dict
from reml.tasks.rl import RL_FAMILIES

BASELINES = ("scratch", "pretrained", "oracle", "maml_trpo")  # then the REML agent, named by rl.reml.agent
TRAINED = ("pretrained", "oracle", "maml_trpo")  # baselines with a training stage (train_rl.py)
N_SLOTS = 3  # REML's policy layers, one agent step each: input, hidden, output (reml/rl/compose.py)


@dataclass(frozen=True)
class SamplerConfig:
    workers: int  # processes stepping the environments (gymnasium AsyncVectorEnv); 1 = in-process
    n_envs: int  # environments stepped together (all workers); more episodes run in rounds
    # Pin each worker process to its own core (Linux): true, false, or "auto" = when the workers are
    # exactly as many as the cores this process may use. Speed only; results never depend on it.
    pin_workers: Literal[True, False, "auto"]

    def __post_init__(self) -> None:
        _require(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        _require(self.n_envs >= self.workers and self.n_envs % self.workers == 0, "n_envs",
                 f"must be a multiple of workers ({self.workers}), got {self.n_envs}")  # fmt: skip
        _require(isinstance(self.pin_workers, bool) or self.pin_workers == "auto", "pin_workers",
                 f"got {self.pin_workers!r}; allowed: true, false, auto")  # fmt: skip
        _require(self.pin_workers is not True or hasattr(os, "sched_setaffinity"), "pin_workers",
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
        _check_seed("seed", self.seed)
        for name in ("inner_lr", "max_kl"):
            _require(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        for name in ("cg_iters", "ls_steps", "threads"):
            _require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        _require(self.cg_damping >= 0, "cg_damping", f"must be >= 0, got {self.cg_damping}")
        _require(0 < self.ls_ratio < 1, "ls_ratio", f"must be in (0, 1), got {self.ls_ratio}")


@dataclass(frozen=True)
class RLPpoConfig:
    """SB3 PPO for the pretrained and oracle policies (the same 100-100 ReLU Gaussian policy)."""

    seed: int
    n_steps: int  # rollout length per PPO update
    batch_size: int
    n_epochs: int
    learning_rate: float

    def __post_init__(self) -> None:
        _check_seed("seed", self.seed)
        for name in ("n_steps", "batch_size", "n_epochs"):
            _require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        _require(self.learning_rate > 0, "learning_rate", f"must be > 0, got {self.learning_rate}")


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
        for name in ("iterations", "meta_batch", "rollouts", "ppo_timesteps", "reml_episodes", "test_rollouts"):
            _require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        _require(self.return_scale > 0, "return_scale", f"must be > 0, got {self.return_scale}")


@dataclass(frozen=True)
class RemlRLConfig:
    """REML for RL (reml/rl/compose.py): the agent, its pool of policy layers, the inner training."""

    agent: str  # reml_ppo | reml_maskable | reml_lstm (reml/agents.py)
    seed: int
    pool: PoolConfig  # width = the policy's hidden width (Finn: 100)
    inner_lr: float  # step size of the inner REINFORCE steps (Finn's test-time alpha: 0.1)
    inner_steps: int
    blend: float  # write-back: pool layer <- (1 - blend) old + blend trained
    ppo: PpoConfig

    def __post_init__(self) -> None:
        _require(self.agent in REML_AGENTS, "agent", f"must be one of {list(REML_AGENTS)}, got {self.agent!r}")
        _check_seed("seed", self.seed)
        _require(self.inner_lr > 0, "inner_lr", f"must be > 0, got {self.inner_lr}")
        _require(self.inner_steps >= 1, "inner_steps", f"must be >= 1, got {self.inner_steps}")
        _require(0 <= self.blend <= 1, "blend", f"must be in [0, 1], got {self.blend}")


@dataclass(frozen=True)
class RLEvaluateConfig:
    seed: int
    n_test: int  # held-out test tasks per family (Finn: 40)
    step_sizes: tuple[float, ...]  # one per test-time policy-gradient step (Finn: 0.1, then 0.05)

    def __post_init__(self) -> None:
        _check_seed("seed", self.seed)
        _require(self.n_test >= 2, "n_test", f"must be >= 2 (for a confidence interval), got {self.n_test}")
        _require(bool(self.step_sizes), "step_sizes", "must list at least one step size")
        _require(min(self.step_sizes) > 0, "step_sizes", f"must all be > 0, got {list(self.step_sizes)}")


@dataclass(frozen=True)
class RLConfig:
    run: tuple[str, ...]  # the families trained and evaluated, in table order
    gamma: float  # discount of the policy-gradient returns (Finn: 0.99)
    sampler: SamplerConfig
    maml_trpo: MamlTrpoConfig
    ppo: RLPpoConfig
    reml: RemlRLConfig
    evaluate: RLEvaluateConfig
    families: dict  # family name -> FamilyConfig (each checked by rl_config)

    def __post_init__(self) -> None:
        _require(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        _require(bool(self.run) and len(set(self.run)) == len(self.run), "run",
                 f"must list one or more distinct families, got {list(self.run)}")  # fmt: skip
        missing = [f for f in self.run if f not in self.families]
        _require(not missing, "run", f"{missing} have no budget under rl.families ({sorted(self.families)})")
        # SB3 trains the REML agent in whole rollouts of reml.ppo.n_steps agent steps (3 per composition):
        # any other count would silently run more compositions than asked for.
        per_rollout = self.reml.ppo.n_steps // math.gcd(self.reml.ppo.n_steps, N_SLOTS)
        for name, budget in self.families.items():
            n = budget.reml_episodes
            _require(n % per_rollout == 0, f"families.{name}.reml_episodes",
                     f"must be a multiple of {per_rollout} ({N_SLOTS} agent steps per composition, in rollouts of "
                     f"rl.reml.ppo.n_steps = {self.reml.ppo.n_steps}), got {n}; e.g. "
                     f"{max(per_rollout, n - n % per_rollout)} or {n - n % per_rollout + per_rollout}")  # fmt: skip

    def family(self, name: str) -> FamilyConfig:
        return self.families[name]

    @property
    def methods(self) -> tuple[str, ...]:
        """Every evaluated method, in table order: the baselines, then the REML agent."""
        return (*BASELINES, self.reml.agent)


def rl_config(params: Params) -> RLConfig:
    """The validated ``rl`` section; errors name the key, like ``reml.config``."""
    section = params.rl
    _require(isinstance(section, dict), "rl", f"expected a mapping, got {section!r}")
    families = section.get("families")
    _require(isinstance(families, dict) and bool(families), "rl.families",
             f"must map one or more of {list(RL_FAMILIES)} to their budgets")  # fmt: skip
    unknown = [f for f in families if f not in RL_FAMILIES]
    _require(not unknown, "rl.families", f"unknown {unknown}; allowed: {list(RL_FAMILIES)}")
    checked = {name: from_dict(FamilyConfig, value, f"rl.families.{name}") for name, value in families.items()}
    return from_dict(RLConfig, {**section, "families": checked}, "rl")
