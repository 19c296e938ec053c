"""REML for meta-RL: a PPO agent composes each task's Gaussian policy from a pool of policy layers
(shared/docs/reml.md; the composition MDP skeleton of :mod:`reml.methods.reml.env`, for policies).

The pool (:class:`reml.methods.reml.pool.LayerPool`) holds input layers (obs -> width), hidden layers
(width -> width) and output layers (width -> action mean), plus one log standard deviation per action
dimension shared by the pool. A policy is input, one hidden, output: obs -> 100 -> 100 -> action mean, Finn's
architecture, i.e. exactly the parameters of :class:`reml.families.rl.policy.GaussianPolicy`.

An episode composes one policy for one task:

- ``reset``: a training task is drawn afresh, and its *first rollouts* are run: ``rollouts`` episodes
  with actions drawn from N(0, I), a probe that ignores the observation and is the same for every task.
  The task is encoded from these rollouts only (:func:`encode_task`);
- three steps choose the input, the hidden and the output layer. The observation is the task encoding,
  a one-hot of the chosen layers and a one-hot of the slot being filled. Invalid choices (a layer of the
  wrong kind for the slot) are masked for ``MaskablePPO`` (:meth:`RLCompositionEnv.action_masks`) and,
  for agents that cannot mask, mapped onto the valid ones (``valid[action % len(valid)]``) and counted
  in ``info["invalid"]``; an episode is exactly three steps;
- at the last step the composed policy is trained by ``inner_steps`` REINFORCE steps (step size
  ``inner_lr``, linear feature baseline: the test-time fine-tuning of every method), each on fresh
  rollouts of the current policy, and its return G is then measured on fresh rollouts. The reward is
  ``sigmoid((G - G_probe) / return_scale)``: bounded in (0, 1), increasing in G (0 before the last
  step). The trained layers and log std are blended back into the pool (``blend``) only when the inner
  steps did not lower the return: G is at least the mean return of the first inner step's own rollouts
  (the composed policy before training; no extra sampling). Otherwise nothing is written and
  ``info["rejected"]`` says so (the reward is still that of G). Without this check one bad step was
  written back whole (``blend`` 1) and wrecked the layers every later policy is built from: on the
  paper navigation profile the pool collapsed at composition ~3,200 and never recovered. An inner step
  that leaves a weight non-finite scores 0, writes nothing and sets ``info["diverged"]``.

At meta-test (:meth:`RLComposer.compose`) the same probe runs on each test task, the agent composes
deterministically from the encoding, and the pool is never modified; the composed policies then go
through the one RL harness like every other method. So REML's "0 steps" row has seen one batch of the
task's episodes (the probe), as the other methods' "1 step" row has.

Device: the pool, the shared log std, the agent and the inner steps run on the pool's device (the
stage's); the rollouts are sampled on the CPU (:mod:`reml.families.rl.sampler`), the task encoded there
from the probe and moved to the device, and each inner step's rollouts are moved there for its gradient.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch import Tensor

from reml.core.config import from_dict, to_dict
from reml.core.io import ArtifactError, load_tensors, reading, save_tensors
from reml.core.nets import Weights
from reml.core.seeding import generator
from reml.families.rl.config import N_SLOTS, RLConfig
from reml.families.rl.pg import TaskBatch, reinforce_step
from reml.families.rl.policy import LOG_STD, GaussianPolicy
from reml.families.rl.sampler import Rollouts, Sampler
from reml.families.rl.tasks import RLFamily
from reml.methods.config import PpoConfig
from reml.methods.reml.agents import Composer, make_agent, policy_tensors, restore_agent
from reml.methods.reml.env import CompositionEnv
from reml.methods.reml.pool import LayerPool, linear_pool, pool_from_tensors, pool_tensors

ENCODING_CLIP = 10.0


@dataclass(frozen=True)
class ComposeSettings:
    """What the composition MDP needs (the ``rl.reml`` params and the family's budgets)."""

    rollouts: int  # episodes per batch: probe, each inner step, and the return after training
    inner_lr: float
    inner_steps: int
    gamma: float
    return_scale: float
    blend: float


def encoding_dim(obs_dim: int, act_dim: int) -> int:
    return 2 * (obs_dim + act_dim) + 1


def encode_task(rollouts: Rollouts) -> Tensor:
    """(T, E) encodings of T tasks from their probe rollouts: the ridge regression of the reward on the
    standardised features [o, o², a, a²] over the steps taken, divided by the rewards' standard
    deviation (so it reads like a correlation: which way of moving pays on this task), and the mean
    reward over that standard deviation; clipped to ±10. ``E = 2 (obs_dim + act_dim) + 1``."""
    o = rollouts.observations.double().clamp(-10, 10)
    a = rollouts.actions.double().clamp(-10, 10)
    features = torch.cat([o, o**2, a, a**2], dim=-1).flatten(1, 2)  # (T, R*H, F)
    weights = rollouts.mask.double().flatten(1)[..., None]  # (T, R*H, 1)
    rewards = rollouts.rewards.double().flatten(1)[..., None]
    n = weights.sum(dim=1, keepdim=True)
    f_mean = (features * weights).sum(dim=1, keepdim=True) / n
    f_std = (((features - f_mean) ** 2 * weights).sum(dim=1, keepdim=True) / n).sqrt() + 1e-8
    z = (features - f_mean) / f_std * weights
    r_mean = (rewards * weights).sum(dim=1, keepdim=True) / n
    r_std = (((rewards - r_mean) ** 2 * weights).sum(dim=1, keepdim=True) / n).sqrt() + 1e-8
    y = (rewards - r_mean) / r_std * weights
    gram = z.transpose(1, 2) @ z / n + 1e-3 * torch.eye(z.shape[-1], dtype=torch.float64, device=z.device)
    coeffs = torch.linalg.solve(gram, z.transpose(1, 2) @ y / n)[..., 0]  # (T, F)
    level = (r_mean / r_std)[:, 0]  # (T, 1)
    return torch.cat([coeffs, level], dim=-1).clamp(-ENCODING_CLIP, ENCODING_CLIP).float()


def probe_params(policy: GaussianPolicy) -> Weights:
    """The probe: zero weights and log std 0, so actions ~ N(0, I) whatever the observation (CPU tensors:
    only the sampler uses them)."""
    return {k: torch.zeros_like(v) for k, v in policy.init(torch.Generator().manual_seed(0)).items()}


def composition_reward(after: float, probe: float, scale: float) -> float:
    """sigmoid((G - G_probe) / scale): in (0, 1), increasing in the return G; 0 if G is not finite."""
    if not math.isfinite(after):
        return 0.0
    return 1.0 / (1.0 + math.exp(-max(min((after - probe) / scale, 50.0), -50.0)))


class RLCompositionEnv(CompositionEnv):
    """Compose a policy from ``pool`` (and the shared ``log_std``) for tasks of ``family``.

    Training (``reset()``): tasks drawn from ``self.np_random``, rollouts by ``sampler``, write-back.
    Meta-test (``reset(options={"encoding": e})``): composition from a given encoding only; nothing is
    sampled, trained or written back, and ``sampler`` may be None. ``log_std`` is on the pool's device.
    """

    test_option = "encoding"

    def __init__(
        self,
        pool: LayerPool,
        log_std: Tensor,
        family: RLFamily,
        obs_dim: int,
        act_dim: int,
        settings: ComposeSettings,
        sampler: Sampler | None = None,
    ) -> None:
        d_in, d_out = pool.parts["input"]["weight"].shape[2], pool.parts["output"]["weight"].shape[1]
        if d_in != obs_dim or d_out != act_dim or log_std.shape != (act_dim,):
            raise ValueError(
                f"the pool maps {d_in} -> {d_out} with log std "
                f"{tuple(log_std.shape)}, but {family.name} has obs {obs_dim}, actions {act_dim}"
            )
        self.log_std, self.family, self.settings, self.sampler = log_std, family, settings, sampler
        width = pool.parts["hidden"]["weight"].shape[1]
        self.policy = GaussianPolicy(obs_dim, act_dim, (width, width))
        self.probe_policy_params = probe_params(self.policy)
        self._encoding = torch.zeros(encoding_dim(obs_dim, act_dim), device=pool.device)
        self._task: np.ndarray | None = None
        self._probe_return = 0.0
        self._generator = torch.Generator()
        super().__init__(pool, N_SLOTS)

    def network_params(self, layers: list[int]) -> Weights:
        """The composed policy's parameters (copies of the pool's layers and log std)."""
        return {**self.pool.network(layers), LOG_STD: self.log_std.clone()}

    # ------------------------------------------------------------------ hooks

    def _task_dim(self) -> int:
        return encoding_dim(self.policy.obs_dim, self.policy.act_dim)

    def _task_encoding(self) -> Tensor:
        return self._encoding

    def _begin_test_task(self, options: dict[str, Any]) -> None:
        self._encoding, self._task = torch.as_tensor(options["encoding"]).float().to(self.device), None
        if self._encoding.shape != (self._task_dim(),):
            raise ValueError(f"encoding of shape {tuple(self._encoding.shape)} does not fit this pool's policies")

    def _begin_training_task(self) -> None:
        if self.sampler is None:
            raise RuntimeError("training episodes need a sampler; pass options={'encoding': ...} to compose")
        self._generator = torch.Generator().manual_seed(int(self.np_random.integers(0, 2**62)))
        self._task = self.family.draw(1, self._generator).to(torch.float64).numpy()
        probe = self.sampler.sample(self.policy, self.probe_policy_params, self._task, self.settings.rollouts,
                                    self._generator)  # fmt: skip
        self._encoding = encode_task(probe)[0].to(self.device)
        self._probe_return = float(probe.returns.mean())

    def _finish(self, info: dict[str, Any]) -> float:
        """Inner steps on the device, each on fresh CPU rollouts moved there; the composed policy goes to
        the sampler once per step (it acts on the CPU). The divergence test is one read-back per episode."""
        s, sampler = self.settings, self.sampler
        current, per_task, before = self.network_params(self._chosen), False, math.nan
        for step in range(s.inner_steps):
            episodes = sampler.sample(self.policy, current, self._task, s.rollouts, self._generator, per_task=per_task)
            if step == 0:
                before = float(episodes.returns.mean())
            current = reinforce_step(
                self.policy, current, TaskBatch.of(episodes.to(self.device), s.gamma), s.inner_lr, per_task=per_task
            )
            per_task = True
        trained = {k: v[0] for k, v in current.items()}
        info["probe_return"], info["diverged"], info["rejected"] = self._probe_return, False, False
        self.pool = self.pool.count_chosen(self._chosen)
        if not bool(torch.stack([torch.isfinite(v).all() for v in trained.values()]).all()):
            # A diverged inner step scores 0 and never enters the pool (it would spoil every later policy).
            info["return"], info["diverged"] = math.nan, True
            return 0.0
        after = sampler.sample(self.policy, current, self._task, s.rollouts, self._generator, per_task=True)
        returned = float(after.returns.mean())
        if returned >= before:
            self.pool = self.pool.write_back(self._chosen, trained, s.blend)
            self.log_std = (1 - s.blend) * self.log_std + s.blend * trained[LOG_STD]
        else:
            info["rejected"] = True
        info["return"] = returned
        return composition_reward(returned, self._probe_return, s.return_scale)


class CompositionLog(BaseCallback):
    """Rows of (timesteps, episodes, episode_reward, return_after, probe_return, invalid_rate,
    diverged_rate, rejected_rate) every ``log_every`` agent steps, each the mean over the compositions
    (and steps) since the previous row; ``return_after`` over the compositions whose inner step did not
    diverge; ``rejected_rate``: compositions whose inner steps lowered the return (not written back)."""

    def __init__(self, log_every: int) -> None:
        super().__init__()
        self.log_every = log_every
        self.rows: list[dict[str, float]] = []
        self._episodes = 0
        self._window: dict[str, list[float]] = {
            k: [] for k in ("reward", "return", "probe", "invalid", "diverged", "rejected")
        }

    def _on_step(self) -> bool:
        for info, reward, done in zip(self.locals["infos"], self.locals["rewards"], self.locals["dones"], strict=True):
            self._window["invalid"].append(float(info["invalid"]))
            if done:
                self._episodes += 1
                self._window["reward"].append(float(reward))
                self._window["return"].append(info["return"])
                self._window["probe"].append(info["probe_return"])
                self._window["diverged"].append(float(info["diverged"]))
                self._window["rejected"].append(float(info["rejected"]))
        if self.num_timesteps % self.log_every == 0 and self._window["reward"]:
            w = self._window
            self.rows.append({
                "timesteps": self.num_timesteps, "episodes": self._episodes,
                "episode_reward": round(float(np.mean(w["reward"])), 6),
                "return_after": _mean_of_finite(w["return"]),
                "probe_return": round(float(np.mean(w["probe"])), 4),
                "invalid_rate": round(float(np.mean(w["invalid"])), 6),
                "diverged_rate": round(float(np.mean(w["diverged"])), 6),
                "rejected_rate": round(float(np.mean(w["rejected"])), 6),
            })  # fmt: skip
            self._window = {k: [] for k in w}
        return True


def _mean_of_finite(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return round(float(np.mean(finite)), 4) if finite else math.nan


# --------------------------------------------------------------------------- composing for test tasks


@dataclass
class RLComposer(Composer):
    """A trained agent and its pool, composing one policy per test task from the task's probe rollouts.
    The environment runs in meta-test mode (nothing trained, nothing written back) and the agent acts
    deterministically."""

    config: dict[str, Any] | None = None

    @property
    def policy(self) -> GaussianPolicy:
        return self.env.policy

    @property
    def probe_rollouts(self) -> int:
        """Probe episodes per task: as many as in training, so the agent reads encodings as noisy as those
        it learned on."""
        return self.env.settings.rollouts

    def compose_tasks(self, tasks: np.ndarray, sampler: Sampler, generator: torch.Generator) -> ComposedTasks:
        """Per-task policies for the (T, P) ``tasks``, the layers chosen, the rate of remapped choices and
        the probe's mean return per task. Runs the probe (``probe_rollouts`` episodes per task) and nothing
        else."""
        probe = sampler.sample(self.policy, self.env.probe_policy_params, tasks, self.probe_rollouts, generator)
        composed = self.compose({"encoding": encoding} for encoding in encode_task(probe))
        returns = probe.returns.mean(dim=1).double()
        return ComposedTasks(composed.params, composed.layers, composed.invalid_rate, returns)


@dataclass(frozen=True)
class ComposedTasks:
    """What :meth:`RLComposer.compose_tasks` returns."""

    params: Weights  # per-task policies, stacked (leading axis T)
    layers: list[list[int]]  # the layers chosen for each task
    invalid_rate: float  # the share of the agent's choices remapped onto valid layers
    probe_returns: Tensor  # (T,) float64: the mean return of each task's probe episodes (random actions)


def save_rl_composer(path: str | Path, agent: str, family: str, algorithm, env: RLCompositionEnv,
                     ppo: PpoConfig, config: dict[str, Any]) -> None:  # fmt: skip
    """One safetensors file: the agent's policy weights, the pool, the shared log std, and metadata (CPU
    tensors, whatever device they trained on: ``save_tensors`` copies them)."""
    tensors = policy_tensors(algorithm, "agent.") | pool_tensors(env.pool, "pool.") | {LOG_STD: env.log_std.detach()}
    meta = {"method": agent, "family": family, "obs_dim": env.policy.obs_dim, "act_dim": env.policy.act_dim,
            "settings": to_dict(env.settings), "ppo": to_dict(ppo), "config": config}  # fmt: skip
    save_tensors(path, tensors, meta)


def load_rl_composer(
    path: str | Path, made_by: str, method: str, family: RLFamily, *, device: torch.device
) -> RLComposer:
    """Rebuild a trained composer for ``family`` on ``device`` (weights only: nothing is unpickled) and
    check it fits."""
    tensors, meta = load_tensors(path, "REML composer", made_by, device=device)
    with reading(path, "REML composer", made_by):
        pool = pool_from_tensors(tensors, "pool.")
        settings = ComposeSettings(**meta["settings"])
        env = RLCompositionEnv(pool, tensors[LOG_STD], family, int(meta["obs_dim"]), int(meta["act_dim"]), settings)
        ppo = from_dict(PpoConfig, meta["ppo"], "ppo")
        state = {k.removeprefix("agent."): v for k, v in tensors.items() if k.startswith("agent.")}
    if (meta["method"], meta["family"]) != (method, family.name):
        raise ArtifactError(f"{path}: holds {meta['method']} for {meta['family']}, expected {method} for "
                            f"{family.name}; rerun `dvc repro {made_by}`")  # fmt: skip
    algorithm = restore_agent(meta["method"], env, ppo, state, Path(path), made_by)
    return RLComposer(meta["method"], algorithm, env, meta["config"])


def train(
    cfg: RLConfig, family_name: str, *, device: torch.device, replicate: int = 0
) -> tuple[RLComposer, CompositionLog]:
    """Train REML's agent to compose policies for one family (``train_reml_rl``) on ``device``. Every
    episode draws a fresh training task, probes it, composes, trains the composed policy by policy
    gradient and writes the trained layers back into the pool. The training tasks come from the
    composition environment's own generator, which SB3 seeds from ``rl.reml.seed`` (never from the test
    tasks' stream); run ``replicate`` uses rl.reml.seed + replicate."""
    r, budget, family = cfg.reml, cfg.family(family_name), cfg.env_family(family_name)
    seed = r.seed + replicate
    spaces = family.make_env()
    obs_dim, act_dim = spaces.observation_space.shape[0], spaces.action_space.shape[0]
    spaces.close()
    p = r.pool
    pool = linear_pool(obs_dim, p.width, act_dim, p.n_input, p.n_hidden, p.n_output,
                       generator(seed, f"rl/reml/{family_name}/pool")).to(device)  # fmt: skip
    settings = ComposeSettings(budget.rollouts, r.inner_lr, r.inner_steps, cfg.gamma, budget.return_scale, r.blend)
    # One task's batch at a time: small, so it runs in-process (the result does not depend on workers).
    with Sampler(family, budget.rollouts, workers=1) as sampler:
        log_std = torch.zeros(act_dim, device=device)
        env = RLCompositionEnv(pool, log_std, family, obs_dim, act_dim, settings, sampler)
        algorithm = make_agent(r.agent, env, r.ppo, seed)
        log = CompositionLog(log_every=r.ppo.n_steps)
        algorithm.learn(total_timesteps=N_SLOTS * budget.reml_episodes, callback=log, progress_bar=sys.stdout.isatty())
    if log.rows:
        first, last = log.rows[0], log.rows[-1]
        print(
            f"{r.agent} {family_name}: return after the inner step {first['return_after']:.2f} (first "
            f"{r.ppo.n_steps // 3} compositions) -> {last['return_after']:.2f} (last); probe {last['probe_return']:.2f}"
        )
    return RLComposer(r.agent, algorithm, env), log


def composer_config(cfg: RLConfig, family_name: str, replicate: int = 0) -> dict[str, Any]:
    """What the composer's file records of its params: only those ``train_reml_rl`` declares."""
    budget = cfg.family(family_name)
    return to_dict(cfg.reml) | {"seed": cfg.reml.seed + replicate, "replicate": replicate,
                                "reml_episodes": budget.reml_episodes, "rollouts": budget.rollouts,
                                "return_scale": budget.return_scale, "frame_skip": budget.frame_skip}  # fmt: skip
