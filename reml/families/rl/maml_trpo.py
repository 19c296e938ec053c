"""MAML for reinforcement learning (Finn et al. 2017, Sec. 5.3 and Algorithm 3) with a TRPO meta-update.

Each meta-iteration draws a meta-batch of tasks; for each task, ``rollouts`` episodes with the current
policy give one REINFORCE step (``inner_lr``, linear feature baseline), and ``rollouts`` episodes of the
adapted policy give the meta-objective: the importance-weighted surrogate of the adapted policies,
maximised by TRPO under a mean-KL constraint. Both the surrogate and the KL are functions of the
shared parameters *through* the inner step (second order; ``first_order`` drops the inner step's
dependence on the parameters). The inner step of the whole meta-batch is one batched computation (the
parameters expanded to a leading task axis, batched matrix products, one backward pass; see
:func:`reml.families.rl.pg.reinforce_step`), not a loop over tasks. That computation and the TRPO step (80-90% of a
meta-iteration) run on ``threads`` torch threads while the sampler's worker processes wait; the
sampling itself stays on the stages' one thread.

Device: the parameters are drawn on the CPU and moved to the stage's device, where the inner step, the
TRPO step and the conjugate gradient run; the rollouts are sampled on the CPU and moved there for them
(once per sample). The per-iteration log values are read back once per meta-iteration.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm import tqdm

from reml.core.config import to_dict
from reml.core.io import write_text
from reml.core.nets import Weights, on_device
from reml.core.seeding import generator
from reml.families.rl.checkpoint import PolicyCheckpoint
from reml.families.rl.config import RLConfig
from reml.families.rl.pg import TaskBatch, reinforce_step
from reml.families.rl.policy import LOG_STD, GaussianPolicy
from reml.families.rl.sampler import Sampler
from reml.families.rl.trpo import trpo_step


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` intra-op threads, then go back to the caller's count.

    The stages otherwise run on one thread (:func:`reml.core.seeding.configure_torch`). Float reductions
    are split by the thread count, so results depend on ``threads`` but, with the count fixed (torch
    turns MKL's dynamic threading off), not on how many cores the machine has."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class MamlTrpoSettings:
    iterations: int
    meta_batch: int  # tasks per meta-iteration (Finn: 20 navigation, 40 locomotion)
    rollouts: int  # episodes per task before and after the inner step (Finn: 20)
    inner_lr: float  # alpha (Finn: 0.1)
    gamma: float = 0.99
    first_order: bool = False
    max_kl: float = 0.01
    cg_iters: int = 10
    cg_damping: float = 1e-5
    ls_steps: int = 15
    ls_ratio: float = 0.8
    threads: int = 1  # torch threads for the inner step and the TRPO update (not the sampling)
    select_iterate: str = "last"  # or "validation": the best return after the inner step on validation tasks
    validate_every: int = 10
    validation_tasks: int = 20


@dataclass
class RLTrainingLog:
    """Per meta-iteration: mean return before and after the inner step, the TRPO step taken, and (where
    iterates are selected on validation tasks) the validation return after the inner step, empty between
    measurements; ``selected``: the iteration whose parameters are returned."""

    rows: list[dict] = field(default_factory=list)
    selected: int = 0

    def write(self, path) -> None:
        header = "iteration,return_before,return_after,kl,backtracks,validation_after"
        lines = [f"{r['iteration']},{r['return_before']:.6g},{r['return_after']:.6g},{r['kl']:.6g},{r['backtracks']},"
                 + ("" if r.get("validation_after") is None else f"{r['validation_after']:.6g}")
                 for r in self.rows]  # fmt: skip
        write_text(path, "\n".join([header, *lines]) + "\n")


def validation_return(
    policy: GaussianPolicy, params: Weights, sampler: Sampler, settings: MamlTrpoSettings, seed: int, device
) -> float:
    """Mean return after the inner step on ``validation_tasks`` tasks of the family's ``validation`` stream
    (never the test stream), with one noise stream for every iterate measured; -inf if not finite."""
    tasks = sampler.family.sample_tasks(settings.validation_tasks, seed, stream="validation")
    rng = generator(seed, "maml_trpo/validation")
    before = sampler.sample(policy, params, tasks, settings.rollouts, rng)
    with torch_threads(settings.threads):
        adapted = reinforce_step(policy, params, TaskBatch.of(before.to(device), settings.gamma), settings.inner_lr)
        adapted = {k: v.detach() for k, v in adapted.items()}
    value = float(sampler.sample(policy, adapted, tasks, settings.rollouts, rng, per_task=True).returns.mean())
    return value if math.isfinite(value) else -math.inf


def meta_objectives(
    policy: GaussianPolicy, train: TaskBatch, valid: TaskBatch, adapted: Weights, settings: MamlTrpoSettings
):
    """(surrogate, KL) as functions of the shared parameters, for the TRPO step. ``adapted`` are the
    per-task parameters that collected ``valid`` (the "old" policies of the importance weights)."""
    with torch.no_grad():
        old_log_prob = policy.log_prob(adapted, valid.observations, valid.actions, per_task=True)  # (T, R, H)
        old_log_std = adapted[LOG_STD].view(-1, 1, 1, policy.act_dim)
        old = (policy.mean(adapted, valid.observations, per_task=True), old_log_std)
    steps = valid.mask.sum(dim=(1, 2))  # (T,)

    def objectives(params: Weights) -> tuple[Tensor, Tensor]:
        new = reinforce_step(policy, params, train, settings.inner_lr, first_order=settings.first_order)
        log_ratio = policy.log_prob(new, valid.observations, valid.actions, per_task=True) - old_log_prob
        surrogate = -((torch.exp(log_ratio) * valid.advantages * valid.mask).sum(dim=(1, 2)) / steps).mean()
        kl = policy.kl(old, new, valid.observations, per_task=True)
        return surrogate, ((kl * valid.mask).sum(dim=(1, 2)) / steps).mean()

    return objectives


def train_maml_trpo(
    policy: GaussianPolicy,
    sampler: Sampler,
    settings: MamlTrpoSettings,
    seed: int,
    desc: str = "maml_trpo",
    *,
    device: torch.device,
) -> tuple[Weights, RLTrainingLog]:
    """Meta-train from a seeded initialisation (drawn on the CPU) on ``device``; tasks are drawn from the
    family's ``maml_trpo/<i>`` stream (never the test stream). Returns the meta-learned parameters (on
    ``device``) and the per-iteration log."""
    family = sampler.family
    params = on_device(policy.init(generator(seed, "maml_trpo/init")), device)
    log = RLTrainingLog(selected=settings.iterations)
    best, best_value = params, -math.inf
    progress = tqdm(range(1, settings.iterations + 1), desc=desc, mininterval=2.0, unit="it")
    for it in progress:
        tasks = family.sample_tasks(settings.meta_batch, seed, stream=f"maml_trpo/{it}")
        rng = generator(seed, f"maml_trpo/rollouts/{it}")
        before = sampler.sample(policy, params, tasks, settings.rollouts, rng)
        with torch_threads(settings.threads):  # the sampler's workers are idle until the next sample
            train = TaskBatch.of(before.to(device), settings.gamma)
            adapted = {k: v.detach() for k, v in reinforce_step(policy, params, train, settings.inner_lr).items()}
        after = sampler.sample(policy, adapted, tasks, settings.rollouts, rng, per_task=True)
        with torch_threads(settings.threads):
            valid = TaskBatch.of(after.to(device), settings.gamma)
            objectives = meta_objectives(policy, train, valid, adapted, settings)
            params, stats = trpo_step(params, objectives, settings.max_kl, settings.cg_damping, settings.cg_iters,
                                      settings.ls_steps, settings.ls_ratio)  # fmt: skip
        row = {"iteration": it, "return_before": float(before.returns.mean()),
               "return_after": float(after.returns.mean()), "kl": stats.kl, "backtracks": stats.backtracks}  # fmt: skip
        if settings.select_iterate == "validation" and (it % settings.validate_every == 0 or it == settings.iterations):
            row["validation_after"] = validation_return(policy, params, sampler, settings, seed, device)
            if row["validation_after"] > best_value:  # a later iterate must be strictly better
                best, best_value, log.selected = params, row["validation_after"], it
        log.rows.append(row)
        progress.set_postfix({"before": f"{row['return_before']:.1f}", "after": f"{row['return_after']:.1f}"},
                             refresh=False)  # fmt: skip
    return (best if settings.select_iterate == "validation" else params), log


def train(
    cfg: RLConfig, family_name: str, *, device: torch.device, method: str = "maml_trpo", replicate: int = 0
) -> tuple[PolicyCheckpoint, RLTrainingLog]:
    """MAML-TRPO on one family (``train_maml_trpo``) on ``device``, the meta-batch's rollouts collected
    together by the vectorised sampler (on the CPU). ``maml_trpo_matched`` meta-trains on REML's number
    of training tasks (:meth:`RLConfig.maml_iterations`); run ``replicate`` uses rl.maml_trpo.seed +
    replicate."""
    family, budget, m = cfg.env_family(family_name), cfg.family(family_name), cfg.maml_trpo
    iterations, seed = cfg.maml_iterations(method, family_name), m.seed + replicate
    probe = family.make_env()
    policy = GaussianPolicy(probe.observation_space.shape[0], probe.action_space.shape[0])
    settings = MamlTrpoSettings(
        iterations, budget.meta_batch, budget.rollouts, m.inner_lr, cfg.gamma,
        m.first_order, budget.max_kl, m.cg_iters, m.cg_damping, m.ls_steps, m.ls_ratio, m.threads,
        m.select_iterate, m.validate_every, m.validation_tasks,
    )  # fmt: skip
    with Sampler.for_job(family, cfg.sampler, budget.meta_batch * budget.rollouts) as s:
        trained, log = train_maml_trpo(policy, s, settings, seed, desc=f"{method} {family_name}", device=device)
    # Only what this stage declares as params (dvc.yaml), so the checkpoint's bytes follow them.
    config = to_dict(m) | {
        "seed": seed,
        "replicate": replicate,
        "iterations": iterations,
        "meta_batch": budget.meta_batch,
        "rollouts": budget.rollouts,
        "max_kl": budget.max_kl,
        "frame_skip": budget.frame_skip,
        "selected_iteration": log.selected,
    }
    last = log.rows[-1]
    print(f"{method} {family_name}: last iteration return {last['return_before']:.2f} before, "
          f"{last['return_after']:.2f} after the inner step; checkpoint: iteration {log.selected} "
          f"({m.select_iterate})")  # fmt: skip
    return PolicyCheckpoint(method, family_name, policy, trained, False, config), log
