"""The Gaussian MLP policy of Finn et al. (2017, Sec. 5.3): obs -> 100 -> 100 -> action mean (ReLU),
with a state-independent log standard deviation per action dimension (rllab's ``GaussianMLPPolicy``,
initial std 1). Functional, like :mod:`reml.core.nets`: parameters are a dict.

Every method takes ``per_task``: then each parameter has a leading task axis T and the observations
are (T, ..., obs_dim), task t's observations going through task t's parameters (batched matrix
products, one graph for the whole meta-batch, which is what the MAML-TRPO meta-update differentiates
three times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from reml.core.nets import MLP, Weights, check_fits

LOG_STD = "log_std"


@dataclass(frozen=True)
class GaussianPolicy:
    obs_dim: int
    act_dim: int
    hidden: tuple[int, ...] = (100, 100)

    @property
    def mlp(self) -> MLP:
        return MLP((self.obs_dim, *self.hidden, self.act_dim))

    def init(self, generator: torch.Generator, init_std: float = 1.0) -> Weights:
        """``nn.Linear``'s default initialisation (see :class:`reml.core.nets.MLP`), std ``init_std``."""
        return {**self.mlp.init(generator), LOG_STD: torch.full((self.act_dim,), math.log(init_std))}

    def mean(self, params: Weights, obs: Tensor, per_task: bool = False) -> Tensor:
        """(..., obs_dim) -> (..., act_dim); with ``per_task``, (T, ..., obs_dim) -> (T, ..., act_dim)."""
        if not per_task:
            return self.mlp(params, obs)
        h = obs.reshape(obs.shape[0], -1, obs.shape[-1])  # (T, M, obs_dim)
        n = self.mlp.n_layers
        for i in range(n):
            h = h @ params[f"{i}.weight"].transpose(1, 2) + params[f"{i}.bias"][:, None, :]
            if i < n - 1:
                h = torch.relu(h)
        return h.reshape(*obs.shape[:-1], self.act_dim)

    def _log_std(self, params: Weights, like: Tensor, per_task: bool) -> Tensor:
        log_std = params[LOG_STD]
        return log_std.view(log_std.shape[0], *[1] * (like.dim() - 2), self.act_dim) if per_task else log_std

    def log_prob(self, params: Weights, obs: Tensor, actions: Tensor, per_task: bool = False) -> Tensor:
        """log pi(a | s): (..., obs_dim), (..., act_dim) -> (...)."""
        log_std = self._log_std(params, actions, per_task)
        z = (actions - self.mean(params, obs, per_task)) * torch.exp(-log_std)
        return -0.5 * (z**2).sum(-1) - log_std.sum(-1) - 0.5 * self.act_dim * math.log(2 * math.pi)

    def kl(self, old: tuple[Tensor, Tensor], params: Weights, obs: Tensor, per_task: bool = False) -> Tensor:
        """KL(old || new) per state; ``old`` = (mean (..., act_dim), log_std broadcastable to it), held fixed."""
        old_mean, old_log_std = old
        log_std = self._log_std(params, old_mean, per_task)
        var, old_var = torch.exp(2 * log_std), torch.exp(2 * old_log_std)
        new_mean = self.mean(params, obs, per_task)
        return (log_std - old_log_std + (old_var + (old_mean - new_mean) ** 2) / (2 * var) - 0.5).sum(-1)

    def check_params(self, params: Weights) -> None:
        check_fits(self, params)
