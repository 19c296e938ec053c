"""The settings of the methods that serve several families, one frozen dataclass each.

A family's params section for a method is one of these, or extends it with the family's own data
sizes (``reml.families.sinusoid.config``). Only the stages read them; the algorithms take explicit
arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from reml.core.config import check_positive, check_rate, check_seed, require

META_LEARNERS = ("maml", "fomaml", "reptile")  # the supervised meta-learners (reml.methods.maml, .reptile)
# REML's agents (reml.methods.reml.agents): SB3 PPO, sb3-contrib MaskablePPO, RecurrentPPO
REML_AGENTS = ("reml_ppo", "reml_maskable", "reml_lstm")


@dataclass(frozen=True)
class MamlConfig:
    """MAML / first-order MAML (Finn et al. 2017, Alg. 2); α is also the test-time step size."""

    seed: int
    iterations: int  # meta-updates (Finn: 70,000 sinusoid, 60,000 classification)
    meta_batch: int  # tasks per meta-update (Finn: 25 sinusoid, 32 Omniglot 5-way)
    inner_lr: float  # α (Finn: 0.01 sinusoid, 0.4 Omniglot 5-way)
    inner_steps: int  # inner SGD steps during meta-training (Finn: 1)
    meta_lr: float  # Adam step size of the meta-update (Finn: 0.001)
    first_order: bool  # drop the second-order terms (FOMAML)

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "iterations", "meta_batch", "inner_steps")
        check_rate("inner_lr", self.inner_lr)
        check_rate("meta_lr", self.meta_lr)


@dataclass(frozen=True)
class ReptileConfig:
    """Reptile (Nichol et al. 2018, batched Alg. 2); its inner step size is also the test-time one."""

    seed: int
    iterations: int  # meta-updates
    meta_batch: int  # tasks per meta-update
    inner_lr: float  # inner SGD step size
    inner_steps: int  # inner SGD steps per task
    outer_lr: float  # ε at the start; annealed linearly to 0

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "iterations", "meta_batch", "inner_steps")
        check_rate("inner_lr", self.inner_lr)
        require(0 < self.outer_lr <= 1, "outer_lr", f"must be in (0, 1], got {self.outer_lr}")


@dataclass(frozen=True)
class PpoConfig:
    """The PPO hyperparameters of a REML agent (thesis: lr 3e-4, clip 0.2; SB3 defaults otherwise)."""

    learning_rate: float
    clip_range: float
    n_steps: int  # environment steps per rollout
    batch_size: int  # minibatch size of the PPO update
    n_epochs: int  # passes over each rollout
    gamma: float  # discount (an episode is only as many steps as the network has layers)
    ent_coef: float  # entropy bonus

    def __post_init__(self) -> None:
        check_rate("learning_rate", self.learning_rate)
        require(0 < self.clip_range < 1, "clip_range", f"must be in (0, 1), got {self.clip_range}")
        check_positive(self, "n_steps", "batch_size", "n_epochs")
        require(self.batch_size <= self.n_steps, "batch_size", f"{self.batch_size} exceeds n_steps = {self.n_steps}")
        require(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        require(self.ent_coef >= 0, "ent_coef", f"must be >= 0, got {self.ent_coef}")


@dataclass(frozen=True)
class PoolConfig:
    """A REML pool of MLP layers (thesis: 40-wide layers, many more hidden layers than one network uses)."""

    width: int  # units of every layer's output (but the output layers')
    n_input: int  # input layers (d_in -> width)
    n_hidden: int  # hidden layers (width -> width)
    n_output: int  # output layers (width -> d_out)

    def __post_init__(self) -> None:
        check_positive(self, "width", "n_input", "n_hidden", "n_output")
