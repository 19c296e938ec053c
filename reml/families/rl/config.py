"""The ``rl`` section of params.yaml (meta-RL, Finn et al. 2017, Sec. 5.3), validated here so that only
the RL stages depend on it; ``load`` is the loader every RL stage uses. Every error names the key and
what is allowed, before any rollout."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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

if TYPE_CHECKING:
    from reml.families.rl.tasks import RLFamily

RL_FAMILIES = ("navigation2d", "cheetah_vel", "cheetah_dir", "ant_vel", "ant_dir")
SIMULATED = ("cheetah_vel", "cheetah_dir", "ant_vel", "ant_dir")  # MuJoCo bodies: frame_skip sets the interval

# then the REML agent, named by rl.reml.agent, and its ablations on the agent's own pools
BASELINES = ("scratch", "pretrained", "pretrained_matched", "oracle", "maml_trpo", "maml_trpo_matched")
# baselines with a training stage (train_maml_trpo, train_rl_ppo), each over rl.baseline_replicates
TRAINED = ("pretrained", "pretrained_matched", "oracle", "maml_trpo", "maml_trpo_matched")
REML_ABLATIONS = ("reml_random", "reml_fixed")  # on the agent's pools (reml.methods.reml.ablations)
PPO_METHODS = ("pretrained", "pretrained_matched", "oracle")  # train_rl_ppo
MAML_METHODS = ("maml_trpo", "maml_trpo_matched")  # train_maml_trpo
# what the REML agent's row is compared with, task by task (REML minus each)
REML_VERSUS = ("reml_random", "reml_fixed", "scratch", "pretrained", "pretrained_matched", "maml_trpo",
               "maml_trpo_matched")  # fmt: skip
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
    cg_iters: int
    cg_damping: float
    ls_steps: int  # backtracking line-search steps
    ls_ratio: float  # step shrink factor per backtrack
    # torch threads for the meta-update (the sampler's workers wait meanwhile); results depend on it
    threads: int
    # which iterate is the checkpoint: "last", or "validation" = the best return after the inner step on
    # validation_tasks tasks of the family's validation stream (never the test tasks), measured every
    # validate_every meta-iterations and after the last (Finn reported the best iterate seen in training)
    select_iterate: Literal["last", "validation"]
    validate_every: int
    validation_tasks: int

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_rate("inner_lr", self.inner_lr)
        check_positive(self, "cg_iters", "ls_steps", "threads", "validate_every", "validation_tasks")
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
    max_kl: float  # MAML-TRPO's KL radius (Finn: 0.01; his reported cheetah_dir checkpoint: 0.02)
    rollouts: int  # episodes per task per step, in training (Finn: 20)
    ppo_timesteps: int  # environment steps for the pretrained and the oracle policy each
    reml_episodes: int  # REML composition episodes in training (each runs 2 + inner_steps batches of rollouts)
    return_scale: float  # REML reward: sigmoid((return - probe return) / return_scale)
    test_rollouts: int  # episodes per test task per step (Finn: 20; 40 for ant_dir)
    # MuJoCo families: simulator steps per action (interval = frame_skip x 0.01 s; v5: 5, rllab: 1 cheetah,
    # 2 ant); null for navigation2d, which has no simulator
    frame_skip: int | None = None

    def __post_init__(self) -> None:
        check_positive(self, "iterations", "meta_batch", "rollouts", "ppo_timesteps", "reml_episodes", "test_rollouts")
        check_rate("return_scale", self.return_scale)
        check_rate("max_kl", self.max_kl)
        fs = self.frame_skip
        require(fs is None or (isinstance(fs, int) and not isinstance(fs, bool) and fs >= 1), "frame_skip",
                 f"must be a positive integer (MuJoCo steps per action) or null, got {fs!r}")  # fmt: skip


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
    # the `oracle` row: "unadapted" = its 0-step return at every step (Finn did not fine-tune it, n_itr=1),
    # the fine-tuned curve then reported as `oracle_finetuned`; "finetuned" = fine-tuned like every method
    oracle: Literal["unadapted", "finetuned"]
    # REML's row: "episodes" = aligned by the episodes each column has seen of the task: its probe batch's
    # return in column 0, then the composed policy after 0..S-1 steps; "steps" = the composed policy after
    # 0..S steps, the probe an extra batch before column 0 (one batch more than the others' row)
    reml_alignment: Literal["episodes", "steps"]
    # each method's test step sizes are scale x step_sizes, the scale chosen per method on n_val validation
    # tasks (their own stream, never the test tasks): the highest mean return over steps 1..S. [1.0]: the
    # same step sizes for every method, nothing tuned
    step_scales: tuple[float, ...]
    n_val: int  # validation tasks per family for that choice

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        require(self.n_test >= 2, "n_test", f"must be >= 2 (for a confidence interval), got {self.n_test}")
        require(bool(self.step_sizes), "step_sizes", "must list at least one step size")
        for lr in self.step_sizes:
            check_rate("step_sizes", lr)
        require(bool(self.step_scales) and len(set(self.step_scales)) == len(self.step_scales), "step_scales",
                 f"must list one or more distinct positive numbers, got {list(self.step_scales)}")  # fmt: skip
        for scale in self.step_scales:
            check_rate("step_scales", scale)
        check_positive(self, "n_val")

    def scaled(self, scale: float) -> tuple[float, ...]:
        """The test step sizes at ``scale``."""
        return tuple(scale * lr for lr in self.step_sizes)

    @property
    def tuned(self) -> bool:
        """Whether step sizes are chosen per method (more than one scale to choose from)."""
        return len(self.step_scales) > 1


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
    # REML (and its ablations on each run's pool) run once per replicate r with rl.reml.seed + r
    replicates: tuple[int, ...] = (0,)
    # the trained baselines (TRAINED) run once per replicate r, each with its section's seed + r
    baseline_replicates: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        for key in ("replicates", "baseline_replicates"):
            runs = getattr(self, key)
            require(bool(runs) and len(set(runs)) == len(runs) and all(isinstance(r, int) and r >= 0 for r in runs),
                    key, f"must list one or more distinct integers >= 0, got {list(runs)}")  # fmt: skip
        require(bool(self.families), "families", f"must map one or more of {list(RL_FAMILIES)} to their budgets")
        unknown = [f for f in self.families if f not in RL_FAMILIES]
        require(not unknown, "families", f"unknown {unknown}; allowed: {list(RL_FAMILIES)}")
        require(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        require(bool(self.run) and len(set(self.run)) == len(self.run), "run",
                 f"must list one or more distinct families, got {list(self.run)}")  # fmt: skip
        missing = [f for f in self.run if f not in self.families]
        require(not missing, "run", f"{missing} have no budget under rl.families ({sorted(self.families)})")
        for name, budget in self.families.items():
            simulated = name in SIMULATED
            require(simulated == (budget.frame_skip is not None), f"families.{name}.frame_skip",
                    "must be a positive integer for a MuJoCo family (v5's default: 5; rllab's interval: 1 for "
                    f"HalfCheetah, 2 for Ant), got {budget.frame_skip!r}" if simulated else
                    f"must be null: {name} has no simulator, got {budget.frame_skip!r}")  # fmt: skip
        # SB3 trains the REML agent in whole rollouts of reml.ppo.n_steps agent steps (3 per composition):
        # any other count would silently run more compositions than asked for.
        per_rollout = self.reml.ppo.n_steps // math.gcd(self.reml.ppo.n_steps, N_SLOTS)
        for name, budget in self.families.items():
            n = budget.reml_episodes
            require(n % per_rollout == 0, f"families.{name}.reml_episodes",
                     f"must be a multiple of {per_rollout} ({N_SLOTS} agent steps per composition, in rollouts of "
                     f"rl.reml.ppo.n_steps = {self.reml.ppo.n_steps}), got {n}; e.g. "
                     f"{max(per_rollout, n - n % per_rollout)} or {n - n % per_rollout + per_rollout}")  # fmt: skip
            # maml_trpo_matched meta-trains on as many tasks as REML composes for in training (run families)
            require(name not in self.run or n % budget.meta_batch == 0, f"families.{name}.reml_episodes",
                     f"must be a multiple of families.{name}.meta_batch ({budget.meta_batch}): maml_trpo_matched "
                     f"meta-trains on REML's {n} training tasks, {budget.meta_batch} per meta-iteration")  # fmt: skip

    def maml_iterations(self, method: str, name: str) -> int:
        """Meta-iterations of ``maml_trpo`` (families.<name>.iterations) or ``maml_trpo_matched`` (REML's
        training tasks, families.<name>.reml_episodes, over the meta-batch)."""
        budget = self.family(name)
        return budget.reml_episodes // budget.meta_batch if method == "maml_trpo_matched" else budget.iterations

    def ppo_timesteps(self, method: str, name: str, horizon: int) -> int:
        """Environment steps of a PPO baseline: families.<name>.ppo_timesteps, or for ``pretrained_matched``
        REML's number of training tasks (reml_episodes) as full-horizon episodes, one task each."""
        budget = self.family(name)
        return budget.reml_episodes * horizon if method == "pretrained_matched" else budget.ppo_timesteps

    def family(self, name: str) -> FamilyConfig:
        return self.families[name]

    def env_family(self, name: str) -> RLFamily:
        """The task family ``name`` at its configured control interval (families.<name>.frame_skip)."""
        from reml.families.rl import rl_family  # the package imports this module

        return rl_family(name, self.family(name).frame_skip)

    @property
    def methods(self) -> tuple[str, ...]:
        """Every evaluated method, in table order: the baselines, the REML agent, then its ablations."""
        return (*BASELINES, self.reml.agent, *REML_ABLATIONS)

    def runs(self, method: str) -> tuple[int, ...]:
        """The replicates ``method`` is trained (or, for REML's ablations, evaluated) over."""
        if method in TRAINED:
            return self.baseline_replicates
        return (0,) if method == "scratch" else self.replicates


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
