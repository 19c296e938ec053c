"""REML for few-shot classification: the family's hooks into the composition MDP (reml.methods.reml.env).

A pool of conv blocks and heads, composed per episode by a PPO agent, with the supervised composition
MDP's slots, masks, remapping of invalid choices, terminal reward ``1 / (1 + query loss / scale)`` and
write-back, and these classification parts:

- the pool: ``n_input`` first blocks (image channels -> filters), ``n_hidden`` blocks (filters ->
  filters) and ``n_output`` linear heads (filters -> N); a network is a first block, ``depth``
  distinct hidden blocks and a head, i.e. exactly a :class:`~reml.families.classification.nets.ConvNet`;
- the loss: cross-entropy; inner training: SGD on the support images;
- the task encoding: the mean support image of each episode label, average-pooled to 7x7 (support
  images only; classification tasks have no "oracle" parameters, so there is no oracle encoding);
- network features: ``log(1 + loss)`` and the accuracy, on the support images, of the best immediate
  completion (the blocks so far, global average pooling, the pool's head that fits best).

Only the terminal reward is offered here (the dense, potential-shaped one is regression-only). A
trained agent is stored like the regression agents: ``policy.zip`` (SB3, for inspection),
``policy.safetensors`` (weights + metadata) and ``pool.safetensors``; loading reads only safetensors.

Device: the pool is drawn on the CPU and moved to the stage's device; episodes are drawn on the CPU and
moved there; the environment, the agent, the inner training and the scoring run there. Files hold CPU
tensors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from reml.core.config import from_dict, to_dict
from reml.core.curve import Curve
from reml.core.harness import Adaptation
from reml.core.io import check_step_sizes, reading
from reml.core.nets import Weights
from reml.core.seeding import generator
from reml.core.tasks import TaskSet
from reml.families.classification.config import ClassificationConfig, ClassificationParams
from reml.families.classification.nets import ConvNet, batch_norm, cross_entropy
from reml.families.classification.tasks import (
    ClassPool,
    EpisodeDistribution,
    fixed_episodes,
    score_episodes,
    tune_episodes,
)
from reml.methods.config import PpoConfig
from reml.methods.reml.ablations import ABLATIONS, most_chosen, random_compositions
from reml.methods.reml.agents import (
    Composer,
    TrainingCurve,
    compose_layers,
    load_agent_file,
    make_agent,
    restore_agent,
    save_agent,
)
from reml.methods.reml.env import SupervisedCompositionEnv
from reml.methods.reml.pool import LayerPool, load_pool, save_pool, stacked_pool

ENCODE_SIZE = 7  # support images are average-pooled to 7x7 for the task encoding


def block_pool(net: ConvNet, n_input: int, n_hidden: int, n_output: int, generator: torch.Generator) -> LayerPool:
    """A fresh pool of ``net``'s first blocks, hidden blocks and heads, drawn kind by kind."""
    return stacked_pool({
        "input": [net.block_init(0, generator) for _ in range(n_input)],
        "hidden": [net.block_init(1, generator) for _ in range(n_hidden)],
        "output": [net.head_init(generator) for _ in range(n_output)],
    })  # fmt: skip


class ConvCompositionEnv(SupervisedCompositionEnv):
    """Compose a ConvNet ``net`` for N-way episodes drawn from ``distribution`` (an ``EpisodeDistribution``)."""

    n_features = 2  # log(1 + loss), accuracy of the best completion

    def __init__(
        self,
        pool: LayerPool,
        net: ConvNet,
        distribution: EpisodeDistribution,
        shots: Sequence[int],
        n_query: int,
        inner_lr: float,
        inner_steps: int,
        reward_scale: float,
        write_back: bool,
        blend: float,
    ) -> None:
        self.n_way = distribution.n_way
        super().__init__(
            pool, net.n_blocks + 1, distribution, net, cross_entropy, tuple(shots), n_query,
            Adaptation("sgd", inner_lr, inner_steps), reward_scale, write_back, blend,
            k_encode=self.n_way * max(shots),  # support images of an episode, N·K
        )  # fmt: skip

    def _task_dim(self) -> int:
        return self.n_way * ENCODE_SIZE**2 + 1  # mean image per label, and K / max K

    def _features(self, x: Tensor) -> Tensor:
        """Globally average-pooled output of the blocks chosen so far (the images' channel means before any)."""
        h = x
        for index in self._chosen[: self.n_slots - 1]:
            p = self.pool.layer(index)
            h = F.conv2d(h, p["conv.weight"], p["conv.bias"], padding=1)
            h = F.max_pool2d(torch.relu(batch_norm(h, p["bn.weight"], p["bn.bias"])), 2)
        return h.mean(dim=(2, 3))

    def _network_features(self) -> Tensor:
        x, y = self._task["support_x"], self._task["support_y"]
        with torch.no_grad():
            if len(self._chosen) == self.n_slots:
                logits = self.model(self.network_params(self._chosen), x)[None]
            else:
                heads = self.pool.parts["output"]
                features = self._features(x)
                if features.shape[1] != heads["weight"].shape[2]:  # before the first block: no head fits
                    return torch.zeros(2, device=self.device)
                logits = torch.einsum("bf,onf->obn", features, heads["weight"]) + heads["bias"][:, None, :]
            losses = torch.stack([cross_entropy(lg, y) for lg in logits])
            best = int(losses.argmin())
            accuracy = (logits[best].argmax(dim=-1) == y).float().mean()
        return torch.stack([losses[best].clamp(max=1e6).log1p(), accuracy])

    def _task_encoding(self) -> Tensor:
        x, y = self._task["support_x"], self._task["support_y"]
        small = F.adaptive_avg_pool2d(x.mean(dim=1, keepdim=True), ENCODE_SIZE).flatten(1)  # (N·K, 49)
        means = (
            torch.zeros(self.n_way, ENCODE_SIZE**2, device=x.device).index_add_(0, y, small)
            / torch.bincount(y, minlength=self.n_way).clamp(min=1)[:, None]
        )
        k = torch.tensor([x.shape[0] / (self.n_way * max(self.k_choices))], device=x.device)
        return torch.cat([means.flatten(), k])


@dataclass
class ClassificationComposer(Composer):
    """A trained agent composing one ConvNet per episode from its support images (query images are never
    read), scored through the shared harness like every other method (per-episode initial parameters)."""

    step_sizes: dict[int, float] = field(default_factory=dict)
    invalid_rates: dict[int, float] = field(default_factory=dict)  # K -> remapped choices when last composed
    distinct_networks: dict[int, int] = field(default_factory=dict)  # K -> different compositions then
    info: dict[str, Any] = field(default_factory=dict)  # what training recorded (seed, ablations)

    @property
    def net(self) -> ConvNet:
        return self.env.model

    def initial_params(self, episodes: TaskSet) -> Weights:
        """Stacked per-episode parameters, composed from the support images only."""
        composed = self.compose(
            {"support": (episodes.support_x[i], episodes.support_y[i])} for i in range(len(episodes))
        )
        k = episodes.support_x.shape[1] // self.env.n_way
        self.invalid_rates[k] = composed.invalid_rate
        self.distinct_networks[k] = composed.distinct
        return composed.params

    def score(self, episodes: TaskSet, adaptation: Adaptation) -> Curve:
        """Scored on the composer's device (``episodes`` are moved there)."""
        episodes = episodes.to(self.env.device)
        return score_episodes(self.net, self.initial_params(episodes), episodes, adaptation, per_task=True)

    def compositions(self, episodes: TaskSet) -> list[list[int]]:
        """The layers the agent chooses for each episode (from its support images)."""
        return self.compose(
            {"support": (episodes.support_x[i], episodes.support_y[i])} for i in range(len(episodes))
        ).layers


@dataclass
class AblationComposer(ClassificationComposer):
    """``reml_random`` or ``reml_fixed`` (:mod:`reml.methods.reml.ablations`) on a trained agent's pool,
    scored like the agent: the same pool and network, only the choice of blocks differs. ``reml_random``
    draws episode i's composition from ``generator(seed, "cls/reml_random/<stream>")`` (never a function of
    the episode); ``reml_fixed`` gives every episode ``layers``."""

    seed: int = 0
    stream: str = "test"  # "val" while tuning, "test" when scored
    layers: tuple[int, ...] = ()

    def initial_params(self, episodes: TaskSet) -> Weights:
        """Stacked per-episode networks; reads nothing of the episodes but their number."""
        if self.agent == "reml_fixed":
            chosen = [list(self.layers)] * len(episodes)
        else:
            rng = generator(self.seed, f"cls/reml_random/{self.stream}")
            chosen = random_compositions(self.env.pool, self.env.n_slots, len(episodes), rng)
        return compose_layers(self.env, chosen).params


def tune_ablations(
    composer: ClassificationComposer,
    cfg: ClassificationConfig,
    val: ClassPool,
    ways: int,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """The ablations' metadata: ``reml_fixed``'s composition (the agent's most frequent on the validation
    episodes, over every K) and both ablations' step sizes per K, tuned on the validation episodes."""
    val_eps = {k: fixed_episodes(val, cfg, ways, k, cfg.evaluate.n_val, "val").to(device) for k in cfg.shots}
    layers = [chosen for k in cfg.shots for chosen in composer.compositions(val_eps[k])]
    fixed = most_chosen(layers)
    out: dict[str, Any] = {"reml_fixed": {"layers": fixed, "val_share": round(layers.count(fixed) / len(layers), 4)}}
    for method in ABLATIONS:
        ablation = AblationComposer(method, None, composer.env, seed=seed, stream="val", layers=tuple(fixed))
        step_sizes, tuning = {}, {}
        for k, episodes in val_eps.items():
            step_sizes[str(k)], tuning[f"k{k}"] = tune_episodes(
                composer.net,
                ablation.initial_params(episodes),
                episodes,
                cfg.evaluate.steps,
                cfg.evaluate.lr_grid,
                per_task=True,
            )
        out.setdefault(method, {}).update(step_sizes=step_sizes, tuning=tuning)
        print(f"{method}: step sizes {step_sizes}")
    return out


def ablations(composer: ClassificationComposer, info: dict[str, Any]) -> list[AblationComposer]:
    """``reml_random`` and ``reml_fixed`` on ``composer``'s pool, with the step sizes tuned at training."""
    meta, seed = info["ablations"], int(info["seed"])
    return [
        AblationComposer(
            method,
            None,
            composer.env,
            {int(k): float(v) for k, v in meta[method]["step_sizes"].items()},
            seed=seed,
            layers=tuple(meta["reml_fixed"]["layers"]),
        )
        for method in ABLATIONS
    ]


def _env(pool: LayerPool, net: ConvNet, cfg: ClassificationConfig, n_way: int, write_back: bool) -> ConvCompositionEnv:
    """An environment for composing (the distribution is a placeholder: evaluation passes the support set)."""
    r = cfg.reml
    placeholder = ClassPool(torch.zeros(n_way, 2, cfg.in_channels, 1, 1), tuple(map(str, range(n_way))))
    return ConvCompositionEnv(pool, net, EpisodeDistribution(placeholder, n_way), cfg.shots, cfg.n_query, r.inner_lr,
                              r.inner_steps, r.reward_scale, write_back=write_back, blend=r.blend)  # fmt: skip


def _net_meta(net: ConvNet) -> list[int]:
    return [net.in_channels, net.filters, net.n_out, net.image_size, net.n_blocks]


def train(
    params: ClassificationParams,
    agent: str,
    ways: int,
    train_split: ClassPool,
    val: ClassPool,
    directory: Path,
    replicate: int = 0,
    *,
    device: torch.device,
) -> list[dict[str, float]]:
    """Train one REML agent to compose conv nets for N-way episodes (``train_reml_classifier``) on
    ``device``, then tune its test-time step size per K on validation episodes; the agent and its pool go
    to ``directory``. Training K is drawn from ``classification.shots`` every episode; the seed is
    ``reml.seed + replicate``. The reference agent also gets its ablations (``tune_ablations``). Returns
    the training curve."""
    cfg, ppo = params.classification, params.reml_ppo
    r = cfg.reml
    seed = r.seed + replicate
    net = cfg.network(ways)
    pool = block_pool(net, r.pool.n_input, r.pool.n_hidden, r.pool.n_output,
                      generator(seed, f"cls/reml/{agent}/{ways}w/pool")).to(device)  # fmt: skip
    env = ConvCompositionEnv(pool, net, EpisodeDistribution(train_split, ways), cfg.shots, cfg.n_query, r.inner_lr,
                             r.inner_steps, r.reward_scale, write_back=True, blend=r.blend)  # fmt: skip
    env.reset(seed=seed)
    algorithm = make_agent(agent, env, ppo, seed)
    curve = TrainingCurve(log_every=max(r.timesteps // 30, 1))
    algorithm.learn(total_timesteps=r.timesteps, callback=curve, progress_bar=sys.stdout.isatty())
    algorithm.policy.set_training_mode(False)
    composer = ClassificationComposer(agent, algorithm, _env(env.pool, net, cfg, ways, write_back=False))
    step_sizes, tuning = {}, {}
    for k in cfg.shots:
        episodes = fixed_episodes(val, cfg, ways, k, cfg.evaluate.n_val, "val").to(device)
        composed, steps, grid = composer.initial_params(episodes), cfg.evaluate.steps, cfg.evaluate.lr_grid
        step_sizes[k], tuning[f"k{k}"] = tune_episodes(net, composed, episodes, steps, grid, per_task=True)
        print(f"K={k}: step size {step_sizes[k]} (validation accuracy by step size {tuning[f'k{k}']})")
    meta = {
        "agent": agent,
        "n_way": ways,
        "classification": to_dict(cfg),
        "ppo": to_dict(ppo),
        "step_sizes": {str(k): v for k, v in sorted(step_sizes.items())},
        "info": {"tuning": tuning, "seed": seed},
    }
    if agent == r.reference:
        meta["info"]["ablations"] = tune_ablations(composer, cfg, val, ways, seed, device)
    save_agent(directory, algorithm, meta)
    save_pool(directory / "pool.safetensors", composer.env.pool, {"net": _net_meta(net)})
    return curve.rows


def load_composer(directory: str | Path, made_by: str, *, device: torch.device) -> ClassificationComposer:
    """Rebuild a trained agent from its safetensors files (weights only: nothing is unpickled), its policy
    and pool on ``device``."""
    directory = Path(directory)
    path, state, meta = load_agent_file(directory, made_by, device=device)
    pool_path = directory / "pool.safetensors"
    pool, pool_meta = load_pool(pool_path, made_by, device=device)
    with reading(pool_path, "block pool", made_by):
        net = ConvNet(*pool_meta["net"])
        pool.network([pool.indices("input")[0], *pool.indices("hidden")[: net.n_blocks - 1], pool.indices("output")[0]])
    with reading(path, "REML agent", made_by):
        cfg = from_dict(ClassificationConfig, meta["classification"], "classification")
        env = _env(pool, net, cfg, int(meta["n_way"]), write_back=False)
        ppo = from_dict(PpoConfig, meta["ppo"], "ppo")
        step_sizes = {int(k): float(v) for k, v in meta["step_sizes"].items()}
        info = meta.get("info", {})
    check_step_sizes(path, step_sizes)
    algorithm = restore_agent(meta["agent"], env, ppo, state, path, made_by)
    return ClassificationComposer(meta["agent"], algorithm, env, step_sizes, info=info)
