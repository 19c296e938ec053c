"""RL² (Duan et al. 2016, "Fast Reinforcement Learning via Slow Reinforcement Learning"): a recurrent
policy that adapts to a task in its hidden state, with no gradient step at test.

A *trial* is ``episodes`` episodes of one task. The policy's LSTM state is kept across the episodes of a
trial and reset only between trials; its input at each step is the environment's observation followed
by the previous action, the previous reward and a flag that is 1 at an episode's first step (Duan et
al.'s (s, a, r, d)), all zero before a trial's first step. :class:`TrialEnv` turns a family's
environment into one long episode per trial, so sb3-contrib's ``RecurrentPPO`` (which resets its LSTM
where an episode starts) keeps the state across the trial's episodes. Training draws a fresh task for
every trial from its own stream, never the test tasks'.

Scoring (:func:`trial_returns`) runs the trained policy on each test task in ``rollouts`` independent
trials of S + 1 episodes and reports, for each c = 0..S, the mean return of the trials' episode c + 1:
column c has seen c episodes of the task in each trial, never more than the other methods' column c
(c batches of ``rollouts`` episodes), so RL² is not given an extra look. Its actions are drawn with the
harness's common random numbers: episode c of trial r uses the reset seed and the action noise that
:meth:`reml.families.rl.sampler.Sampler.sample` gives rollout r in column c, the same draws, in the
same order, from the same generator.

The trained policy is stored as safetensors (weights and the settings that rebuild it); nothing is
unpickled. Training runs on the stage's device; the environments stay on the CPU.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import Tensor

from reml.core.config import check_positive, check_rate, check_seed, require
from reml.core.curve import Curve
from reml.core.io import ArtifactError, load_tensors, reading, save_tensors, write_text
from reml.families.rl.tasks import RLFamily


@dataclass(frozen=True)
class Rl2Config:
    """RL²'s settings: sb3-contrib RecurrentPPO on trials of ``trial_episodes`` episodes of one task."""

    seed: int
    trial_episodes: int  # episodes per training trial (the hidden state is kept across them)
    lstm_hidden: int  # LSTM units of the policy (and of the critic's own LSTM)
    hidden: tuple[int, ...]  # MLP layers after the LSTM, policy and value each
    n_envs: int  # trials run side by side in training
    n_steps: int  # environment steps per trial slot per PPO rollout
    batch_size: int  # minibatch of the PPO update (in steps)
    n_epochs: int
    learning_rate: float
    ent_coef: float

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_positive(self, "trial_episodes", "lstm_hidden", "n_envs", "n_steps", "batch_size", "n_epochs")
        require(len(self.hidden) > 0 and all(isinstance(h, int) and h > 0 for h in self.hidden), "hidden",
                f"must list one or more positive layer widths, got {list(self.hidden)}")  # fmt: skip
        check_rate("learning_rate", self.learning_rate)
        require(math.isfinite(self.ent_coef) and self.ent_coef >= 0, "ent_coef", f"must be >= 0, got {self.ent_coef}")
        rollout = self.n_envs * self.n_steps
        require(self.batch_size <= rollout, "batch_size", f"{self.batch_size} exceeds n_envs x n_steps = {rollout}")


# --------------------------------------------------------------------------- trials


def trial_observation(obs: np.ndarray, prev_action: np.ndarray, prev_reward: np.ndarray,
                      first: np.ndarray) -> np.ndarray:  # fmt: skip
    """The policy's input, (..., obs + act + 2): observation, previous action, previous reward, first-step flag."""
    return np.concatenate([obs, prev_action, prev_reward[..., None], first[..., None]], axis=-1).astype(np.float32)


class TrialEnv(gym.Env):
    """A trial of ``episodes`` episodes of one task as one gymnasium episode (it ends after the last).

    At every reset a new task is drawn from ``generator``, unless ``options["task"]`` gives it (scoring);
    ``options["seeds"]``, one per episode, seeds each episode's reset. Between the trial's episodes the
    inner environment is reset and the observation says so (flag 1) and carries the last action and
    reward. ``episode``/``t``: the current episode and its step; ``info["episode_returns"]`` at the
    trial's end lists the returns of its episodes."""

    def __init__(self, family: RLFamily, episodes: int, generator: torch.Generator | None = None) -> None:
        self.env = family.make_env()
        self.family, self.episodes, self.generator = family, episodes, generator
        obs_dim, act = self.env.observation_space.shape[0], self.env.action_space
        self.act_dim = act.shape[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim + self.act_dim + 2,), np.float32)
        self.action_space = act
        self.task = np.zeros(len(family.param_names))
        self.t = self.episode = 0
        self._returns: list[float] = []
        self._seeds: list[int | None] = []

    def _observe(self, obs, action, reward, first: bool) -> np.ndarray:
        return trial_observation(np.asarray(obs, np.float32), np.asarray(action, np.float32),
                                 np.asarray(reward, np.float32), np.asarray(float(first), np.float32))  # fmt: skip

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "task" in options:
            self.task = np.asarray(options["task"], np.float64)
        elif self.generator is None:
            raise ValueError("TrialEnv without a generator needs options={'task': ...} at reset")
        else:
            self.task = self.family.draw(1, self.generator)[0].to(torch.float64).numpy()
        self._seeds = [int(s) for s in options.get("seeds", [])] + [None] * self.episodes
        self.env.set_task(self.task)
        self.t, self.episode, self._returns = 0, 0, [0.0]
        obs, info = self.env.reset(seed=seed if self._seeds[0] is None else self._seeds[0])
        return self._observe(obs, np.zeros(self.act_dim), 0.0, True), info

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64), self.action_space.low, self.action_space.high)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        self._returns[-1] += float(reward)
        if not (terminated or truncated or self.t >= self.family.horizon):
            return self._observe(obs, action, reward, False), float(reward), False, False, info
        self.episode += 1
        if self.episode == self.episodes:
            info = {**info, "episode_returns": list(self._returns)}
            return self._observe(obs, action, reward, False), float(reward), True, False, info
        self.t = 0
        self._returns.append(0.0)
        obs, _ = self.env.reset(seed=self._seeds[self.episode])
        return self._observe(obs, action, reward, True), float(reward), False, False, info


# --------------------------------------------------------------------------- training


@dataclass
class TrialReturnLog(BaseCallback):
    """Per PPO rollout: the mean return of the first and of the last episode of the trials that ended in
    it (the gap is what the policy learned to gain within a trial)."""

    rows: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self._trials: list[list[float]] = []

    def _on_step(self) -> bool:
        self._trials += [info["episode_returns"] for info in self.locals["infos"] if "episode_returns" in info]
        return True

    def _on_rollout_end(self) -> None:
        if self._trials:
            first, last = np.mean([t[0] for t in self._trials]), np.mean([t[-1] for t in self._trials])
            self.rows.append({"timesteps": self.num_timesteps, "first_episode": float(first),
                              "last_episode": float(last)})  # fmt: skip
        self._trials = []

    def write(self, path: str | Path) -> None:
        lines = [f"{r['timesteps']},{r['first_episode']:.6g},{r['last_episode']:.6g}" for r in self.rows]
        write_text(path, "\n".join(["timesteps,first_episode,last_episode", *lines]) + "\n")


def policy_kwargs(cfg: Rl2Config) -> dict[str, Any]:
    return {"lstm_hidden_size": cfg.lstm_hidden, "net_arch": {"pi": list(cfg.hidden), "vf": list(cfg.hidden)},
            "activation_fn": torch.nn.Tanh, "log_std_init": 0.0}  # fmt: skip


def train_rl2(
    family: RLFamily, cfg: Rl2Config, timesteps: int, gamma: float, tasks: torch.Generator, seed: int,
    *, device: torch.device,
) -> tuple[RecurrentActorCriticPolicy, TrialReturnLog]:  # fmt: skip
    """RecurrentPPO on ``cfg.n_envs`` trial slots, each trial a fresh task from ``tasks``, for
    ``timesteps`` environment steps; the trained policy (on ``device``, in evaluation mode) and its log."""
    env = DummyVecEnv([lambda: TrialEnv(family, cfg.trial_episodes, tasks) for _ in range(cfg.n_envs)])
    model = RecurrentPPO("MlpLstmPolicy", env, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                         learning_rate=cfg.learning_rate, gamma=gamma, ent_coef=cfg.ent_coef, seed=seed,
                         policy_kwargs=policy_kwargs(cfg), device=device, verbose=0)  # fmt: skip
    log = TrialReturnLog()
    model.learn(total_timesteps=timesteps, callback=log, progress_bar=sys.stdout.isatty())
    env.close()
    model.policy.set_training_mode(False)
    return model.policy, log


def build_policy(family: RLFamily, cfg: Rl2Config, device: torch.device | str = "cpu") -> RecurrentActorCriticPolicy:
    """An untrained RL² policy for ``family`` (what :func:`load_rl2` fills with trained weights)."""
    probe = TrialEnv(family, cfg.trial_episodes, torch.Generator())
    policy = RecurrentActorCriticPolicy(probe.observation_space, probe.action_space, lambda _: cfg.learning_rate,
                                        **policy_kwargs(cfg))  # fmt: skip
    probe.env.close()
    policy.set_training_mode(False)
    return policy.to(device)


def save_rl2(path: str | Path, policy: RecurrentActorCriticPolicy, family: RLFamily, cfg: Rl2Config,
             config: dict[str, Any]) -> None:  # fmt: skip
    """The policy's weights and what rebuilds it: the family, its control interval and ``cfg``."""
    meta = {"method": "rl2", "family": family.name, "frame_skip": family.frame_skip, "rl2": asdict(cfg),
            "config": config}  # fmt: skip
    save_tensors(path, {k: v.detach() for k, v in policy.state_dict().items()}, meta)


def load_rl2(path: str | Path, made_by: str, family: RLFamily, *, device: torch.device | str = "cpu"):
    """(policy on ``device``, its Rl2Config, the training config) of a file :func:`save_rl2` wrote, checked
    against ``family`` (name and control interval); errors name the file and the stage that writes it."""
    state, meta = load_tensors(path, "RL² policy", made_by, device=device)
    with reading(path, "RL² policy", made_by):
        settings = dict(meta["rl2"], hidden=tuple(meta["rl2"]["hidden"]))
        cfg = Rl2Config(**settings)
        if meta["family"] != family.name or meta["frame_skip"] != family.frame_skip:
            raise ArtifactError(f"{path}: an RL² policy for {meta['family']} at frame_skip {meta['frame_skip']}, "
                                f"not {family.name} at {family.frame_skip}; rerun `dvc repro {made_by}`")  # fmt: skip
        policy = build_policy(family, cfg, device)
        policy.load_state_dict(state, strict=True)
    return policy, cfg, meta["config"]


# --------------------------------------------------------------------------- scoring


def _act(policy: RecurrentActorCriticPolicy, obs: np.ndarray, states: tuple[Tensor, Tensor], noise: Tensor):
    """The actions mean + std x noise for a batch of trial observations, and the LSTM's next state."""
    device = policy.device
    starts = torch.zeros(len(obs), device=device)  # a trial's state starts at zero; it is never reset within
    with torch.no_grad():
        dist, states = policy.get_distribution(torch.as_tensor(obs, device=device), states, starts)
        gauss = dist.distribution
        action = gauss.mean + gauss.stddev * noise.to(device)
    return action.cpu().numpy(), states


def harness_draws(n_tasks: int, rollouts: int, steps: int, horizon: int, act_dim: int, generator: torch.Generator):
    """The reset seeds (S+1, T*R) and action noise (S+1, T*R, H, act_dim) that the harness's sampler draws
    for columns 0..S of T tasks x R rollouts, in its order (seeds, then noise, column by column)."""
    seeds, noise = [], []
    for _ in range(steps + 1):
        seeds.append(torch.randint(0, 2**31 - 1, (n_tasks * rollouts,), generator=generator))
        noise.append(torch.randn(n_tasks * rollouts, horizon, act_dim, generator=generator))
    return torch.stack(seeds).numpy(), torch.stack(noise)


def trial_returns(
    policy: RecurrentActorCriticPolicy,
    family: RLFamily,
    tasks: np.ndarray,
    rollouts: int,
    steps: int,
    generator: torch.Generator,
) -> Curve:
    """Mean return of episode c + 1 (c = 0..``steps``) over ``rollouts`` trials of each of the (T, P)
    ``tasks``: (T, steps + 1), the harness's columns aligned by the episodes each trial has seen. All
    trials step together, one policy call per time step; a trial that has ended waits."""
    n, horizon = len(tasks) * rollouts, family.horizon
    envs = [TrialEnv(family, steps + 1) for _ in range(n)]
    seeds, noise = harness_draws(len(tasks), rollouts, steps, horizon, envs[0].act_dim, generator)
    task_of = np.repeat(np.arange(len(tasks)), rollouts)
    obs = np.stack([env.reset(options={"task": tasks[task_of[i]], "seeds": seeds[:, i]})[0]
                    for i, env in enumerate(envs)])  # fmt: skip
    lstm = policy.lstm_actor
    zeros = torch.zeros(lstm.num_layers, n, lstm.hidden_size, device=policy.device)
    states = (zeros, zeros.clone())
    returns = np.zeros((n, steps + 1))
    alive = np.ones(n, bool)
    rows = torch.arange(n)
    while alive.any():
        episode = torch.tensor([min(env.episode, steps) for env in envs])  # an ended trial's index is unused
        t = torch.tensor([min(env.t, horizon - 1) for env in envs])
        step_noise = noise[episode, rows, t]  # one gather, not one indexing per trial
        action, new = _act(policy, obs, states, step_noise)
        keep = torch.as_tensor(alive, device=policy.device).view(1, n, 1)
        states = tuple(torch.where(keep, a, b) for a, b in zip(new, states, strict=True))
        for i in np.flatnonzero(alive):
            obs[i], _, done, _, info = envs[i].step(action[i])
            if done:
                alive[i] = False
                returns[i] = info["episode_returns"]
    for env in envs:
        env.env.close()
    per_task = returns.reshape(len(tasks), rollouts, steps + 1).mean(axis=1)
    return Curve(torch.as_tensor(per_task, dtype=torch.float64))
