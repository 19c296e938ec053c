"""The ``scratch``, ``pretrained`` and ``oracle`` RL baselines (Finn et al. 2017, Sec. 5.3).

``scratch``: a seeded random initialisation of the policy, drawn at evaluation.

``pretrained``: one policy trained on tasks drawn afresh from the whole distribution at every episode,
then fine-tuned on a test task by the same policy-gradient steps as every method. ``oracle``: the
same, but the task parameters are appended to the observation, so it needs no adaptation (an upper
reference). Both use the 100-100 ReLU Gaussian policy of :class:`reml.families.rl.policy.GaussianPolicy`, whose
parameters are read out of the SB3 policy after training.

Device: SB3's PPO trains on the stage's device; the environments (and the task draws) stay on the CPU,
and SB3 moves each step's observations to the device itself (one transfer per environment step, which
an SB3 agent cannot avoid).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor

from reml.core.config import to_dict
from reml.core.io import write_text
from reml.core.nets import Weights
from reml.core.seeding import generator
from reml.families.rl.checkpoint import PolicyCheckpoint
from reml.families.rl.config import RLConfig
from reml.families.rl.policy import LOG_STD, GaussianPolicy
from reml.families.rl.tasks import RLFamily


class TaskSamplingEnv(gym.Env):
    """A family's environment that draws a fresh task from ``generator`` at every reset and cuts episodes
    at the family's horizon; ``with_task`` appends the task parameters to the observation."""

    def __init__(self, family: RLFamily, generator: torch.Generator, with_task: bool) -> None:
        self.env = family.make_env()
        self.family, self.generator, self.with_task, self.horizon = family, generator, with_task, family.horizon
        inner = self.env.observation_space
        extra = len(family.param_names) if with_task else 0
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (inner.shape[0] + extra,), np.float32)
        self.action_space = self.env.action_space
        self.task = np.zeros(len(family.param_names))
        self._t = 0

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        return np.concatenate([obs, self.task.astype(np.float32)]) if self.with_task else obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.task = self.family.draw(1, self.generator)[0].to(torch.float64).numpy()
        self._t = 0
        self.env.set_task(self.task)
        obs, info = self.env.reset(seed=seed)
        return self._observe(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += 1
        return self._observe(obs), float(reward), terminated, truncated or self._t >= self.horizon, info


@dataclass
class EpisodeReturnLog(BaseCallback):
    """Mean return of the episodes that ended during each PPO rollout (read from SB3's ``Monitor`` info
    as they end, not from its 100-episode rolling buffer)."""

    rows: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self._returns: list[float] = []

    def _on_step(self) -> bool:
        self._returns += [info["episode"]["r"] for info in self.locals["infos"] if "episode" in info]
        return True

    def _on_rollout_end(self) -> None:
        if self._returns:
            self.rows.append({"timesteps": self.num_timesteps, "episode_return": float(np.mean(self._returns))})
        self._returns = []

    def write(self, path) -> None:
        lines = [f"{r['timesteps']},{r['episode_return']:.6g}" for r in self.rows]
        write_text(path, "\n".join(["timesteps,episode_return", *lines]) + "\n")


def sb3_params(model: PPO) -> Weights:
    """The SB3 policy's action mean network and log std as :class:`GaussianPolicy` parameters (on the
    model's device)."""
    layers = [m for m in model.policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    layers.append(model.policy.action_net)
    params = {}
    for i, layer in enumerate(layers):
        params[f"{i}.weight"] = layer.weight.detach().clone()
        params[f"{i}.bias"] = layer.bias.detach().clone()
    params[LOG_STD] = model.policy.log_std.detach().clone()
    return params


def train_ppo(
    family: RLFamily,
    policy: GaussianPolicy,
    generator: torch.Generator,
    with_task: bool,
    timesteps: int,
    gamma: float,
    n_steps: int,
    batch_size: int,
    n_epochs: int,
    learning_rate: float,
    seed: int,
    progress_bar: bool = False,
    *,
    device: torch.device,
) -> tuple[Weights, EpisodeReturnLog]:
    """PPO on ``device`` on tasks drawn from ``generator`` (a fresh one every episode); returns the policy's
    parameters (on ``device``) and the return log."""
    env = Monitor(TaskSamplingEnv(family, generator, with_task))
    kwargs = {"net_arch": {"pi": list(policy.hidden), "vf": list(policy.hidden)}, "activation_fn": torch.nn.ReLU,
              "log_std_init": 0.0}  # fmt: skip
    model = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=batch_size, n_epochs=n_epochs,
                learning_rate=learning_rate, gamma=gamma, seed=seed, policy_kwargs=kwargs, device=device,
                verbose=0)  # fmt: skip
    log = EpisodeReturnLog()
    model.learn(total_timesteps=timesteps, callback=log, progress_bar=progress_bar)
    params = sb3_params(model)
    policy.check_params(params)
    env.close()
    return params, log


def train(
    cfg: RLConfig, method: str, family_name: str, *, device: torch.device, replicate: int = 0
) -> tuple[PolicyCheckpoint, EpisodeReturnLog]:
    """``pretrained`` or ``oracle`` on one family (``train_rl_ppo``) on ``device``: SB3 PPO on tasks drawn
    from the whole distribution (a fresh one every episode, from the method's own stream, never the test
    tasks'), the oracle with the task parameters in its observation."""
    family, p = cfg.env_family(family_name), cfg.ppo
    probe = family.make_env()
    with_task, seed = method == "oracle", p.seed + replicate
    timesteps = cfg.ppo_timesteps(method, family_name, family.horizon)  # pretrained_matched: REML's tasks
    obs_dim = probe.observation_space.shape[0] + (len(family.param_names) if with_task else 0)
    policy = GaussianPolicy(obs_dim, probe.action_space.shape[0])
    tasks = generator(seed, f"rl/{family_name}/{method}")
    trained, log = train_ppo(family, policy, tasks, with_task, timesteps, cfg.gamma, p.n_steps,
                             p.batch_size, p.n_epochs, p.learning_rate, seed,
                             progress_bar=sys.stdout.isatty(), device=device)  # fmt: skip
    if log.rows:
        print(f"{method} {family_name}: last rollout's mean episode return {log.rows[-1]['episode_return']:.2f}")
    config = to_dict(p) | {"seed": seed, "replicate": replicate, "timesteps": timesteps,
                           "frame_skip": cfg.family(family_name).frame_skip}  # fmt: skip
    return PolicyCheckpoint(method, family_name, policy, trained, with_task, config), log
