"""REML for sinusoid regression: the family's hooks into the composition MDP (reml.methods.reml.env).

A network is input, ``depth`` hidden and output layers of width 40 from a pool of MLP layers, ReLU
between them: exactly a :class:`reml.core.nets.MLP` whose parameters are the chosen layers. At the end
of a training episode it gets ``inner_steps`` of the stated optimiser on the task's support points,
is scored on its held-out query points, and its layers are written back (``write_back``, ``blend``).

Observation (a flat float32 vector):
- the task: ``support`` (default) encodes the K support points, sorted by x, as ``k_encode`` rows of
  (x, y, present) with zero rows after the K-th, so one policy serves every K <= ``k_encode``;
  ``oracle`` gives the true task parameters instead (as in the thesis; tables label it oracle);
- the network so far: one-hot of the chosen layers, one-hot of the slot being filled, and two
  features computed on the *support points*: ``log(1 + current loss)`` and ``log(1 + output scale)``.
  The current loss of a partial network is the support MSE of its best immediate completion (the
  layers so far followed by the pool's output layer that fits the support points best); before any
  layer it is the loss of predicting 0, and for a complete network its own loss. The output scale
  is the root-mean-square of the last chosen layer's outputs (of x before any layer);
- with ``candidate_scores`` (BounceGrad's proposal score, Alet et al. 2018), one more entry per pool
  layer: ``log(1 + support MSE)`` of the network prefix + that layer (completed by the pool's best output
  layer) after one inner step, for the layers that may fill the current slot, −1 for the others.

With ``slot_pools``, hidden slot s draws only from its own share of the hidden layers (local index j with
``j % depth == s - 1``), so each slot's layers specialise to their position in the network.

Reward: ``terminal`` gives ``bounded_reward(query loss after inner training)`` at the last step and
0 before. ``dense`` shapes it with the potential φ (Ng et al. 1999): φ = 0 at the start,
``bounded_reward`` of the query loss of the support-chosen completion for a partial network, and the
terminal reward for the finished one; each step pays φ_after − φ_before. The episode return is then
exactly the terminal reward (the sum telescopes), so both modes rank networks identically, and
every step's reward lies in [−1, 1].

A trained agent is stored as a directory: ``policy.zip`` (SB3's file), ``policy.safetensors`` (the
policy weights and everything needed to rebuild the composer: agent, encoding, configs, fine-tuning
step sizes) and ``pool.safetensors``. Evaluation reads only the safetensors files.

Device: the pool is drawn on the CPU and moved to the stage's device; the environment, the agent, the
inner training and the validation scoring run there (:mod:`reml.methods.reml.env`). Files hold CPU tensors.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch import Tensor

from reml.core.config import ConfigError, from_dict, to_dict
from reml.core.harness import Adaptation, adapt, mse
from reml.core.io import ArtifactError, check_step_sizes, reading
from reml.core.nets import MLP, InputKind, Weights
from reml.core.seeding import generator
from reml.core.tasks import TaskDistribution, TaskSet
from reml.families.sinusoid.baselines import tune_per_k
from reml.families.sinusoid.config import RemlConfig, SinusoidParams, reml_method
from reml.families.sinusoid.tasks import SinusoidDistribution
from reml.methods.config import PpoConfig
from reml.methods.reml.ablations import most_chosen, random_compositions
from reml.methods.reml.agents import (
    Composer,
    TrainingCurve,
    compose_layers,
    load_agent_file,
    make_agent,
    restore_agent,
    save_agent,
    save_sb3_zip,
)
from reml.methods.reml.env import SupervisedCompositionEnv, bounded_reward
from reml.methods.reml.pool import KINDS, LayerPool, linear_pool, load_pool, save_pool

Encoding = Literal["support", "oracle"]
RewardMode = Literal["terminal", "dense", "relative"]


def network_model(pool: LayerPool, n_slots: int) -> MLP:
    """The MLP a composition of ``n_slots`` layers of ``pool`` makes."""
    d_in, d_out = pool.parts["input"]["weight"].shape[2], pool.parts["output"]["weight"].shape[1]
    return MLP((d_in, *[pool.parts["hidden"]["weight"].shape[1]] * (n_slots - 1), d_out))


class RegressionCompositionEnv(SupervisedCompositionEnv):
    """Compose an MLP from ``pool`` for tasks drawn from ``distribution`` (fresh every episode)."""

    n_features = 2  # log(1 + current loss), log(1 + output scale)

    def __init__(
        self,
        pool: LayerPool,
        distribution: TaskDistribution,
        depth: int = 3,
        k_support: int | Sequence[int] = 10,
        k_query: int = 10,
        inner_optimizer: Literal["sgd", "adam"] = "adam",
        inner_lr: float = 0.005,
        inner_steps: int = 10,
        encoding: Encoding = "support",
        reward: RewardMode = "terminal",
        reward_scale: float = 1.0,
        write_back: bool = True,
        blend: float = 1.0,
        k_encode: int | None = None,
        pool_update: str = "overwrite",
        meta_lr: float = 0.001,
        first_order: bool = True,
        slot_pools: bool = False,
        candidate_scores: bool = False,
    ) -> None:
        if depth < 1 or depth > pool.n_hidden:
            raise ValueError(f"depth must be in [1, {pool.n_hidden}] (the pool's hidden layers), got {depth}")
        if encoding not in ("support", "oracle"):
            raise ValueError(f"encoding must be 'support' or 'oracle', got {encoding!r}")
        if reward not in ("terminal", "dense", "relative"):
            raise ValueError(f"reward must be 'terminal', 'dense' or 'relative', got {reward!r}")
        self.encoding = encoding
        self.reward_mode = reward
        self._potential = 0.0
        self.slot_pools, self.candidate_scores = slot_pools, candidate_scores
        self.n_features = 2 + (pool.size if candidate_scores else 0)
        n_slots = depth + 2
        super().__init__(
            pool, n_slots, distribution, network_model(pool, n_slots), mse, k_support, k_query,
            Adaptation(inner_optimizer, inner_lr, inner_steps), reward_scale, write_back, blend, k_encode,
            pool_update=pool_update, meta_lr=meta_lr, first_order=first_order, relative_reward=reward == "relative",
        )  # fmt: skip

    def valid_actions(self) -> list[int]:
        """The base rule (input, distinct hiddens, output); with ``slot_pools``, hidden slot s (1-based)
        takes only the hidden layers whose local index j has ``j % depth == s - 1``."""
        valid = super().valid_actions()
        slot = len(self._chosen)
        if not self.slot_pools or slot in (0, self.n_slots - 1):
            return valid
        return [i for i in valid if i in self.slot_layers(slot)]

    def slot_layers(self, slot: int) -> list[int]:
        """The hidden layers that hidden slot ``slot`` (1-based) may take under ``slot_pools``."""
        hidden = self.pool.indices("hidden")
        return [i for i in hidden if (i - hidden.start) % (self.n_slots - 2) == slot - 1]

    # ------------------------------------------------------------------ hooks

    def _task_dim(self) -> int:
        return 3 * self.k_encode if self.encoding == "support" else len(self.distribution.param_names)

    def _begin_training_task(self) -> None:
        self._potential = 0.0
        super()._begin_training_task()

    def _begin_test_task(self, options: dict[str, Any]) -> None:
        self._potential = 0.0
        super()._begin_test_task(options)
        if self.encoding == "oracle":
            if "task_params" not in options:
                raise ValueError("the oracle encoding needs options['task_params'] to compose for a task")
            self._task["task_params"] = options["task_params"].to(self.device)

    def _finish(self, info: dict[str, Any]) -> float:
        return self._pay(super()._finish(info))

    def _step_reward(self) -> float:
        return self._pay(self._partial_potential()) if self.reward_mode == "dense" else 0.0

    def _pay(self, potential: float) -> float:
        """The reward for reaching ``potential``: itself (terminal) or its change (dense, potential-shaped)."""
        if self.reward_mode != "dense":
            return potential
        reward, self._potential = potential - self._potential, potential
        return reward

    def _features(self, x: Tensor) -> Tensor:
        """Outputs of the chosen layers (input and hidden; ReLU after each) on points ``x``."""
        h = x
        for index in self._chosen[: self.n_slots - 1]:
            layer = self.pool.layer(index)
            h = torch.relu(torch.nn.functional.linear(h, layer["weight"], layer["bias"]))
        return h

    def _completions(self, x: Tensor) -> Tensor:
        """(n_output, m, 1): the partial network followed by each output layer of the pool."""
        h = self._features(x)
        heads = self.pool.parts["output"]
        return torch.einsum("mw,odw->omd", h, heads["weight"]) + heads["bias"][:, None, :]

    def _best_completion(self) -> int:
        """Which output layer (local index) completes the partial network best on the support points."""
        errors = ((self._completions(self._task["support_x"]) - self._task["support_y"]) ** 2).mean(dim=(1, 2))
        return int(errors.argmin())

    def _partial_potential(self) -> float:
        """Dense-reward potential of a partial network: reward of its support-chosen completion's query loss."""
        with torch.no_grad():
            prediction = self._completions(self._task["query_x"])[self._best_completion()]
            return bounded_reward(mse(prediction, self._task["query_y"]).item(), self.reward_scale)

    def _network_features(self) -> Tensor:
        """log(1 + current support loss), log(1 + output scale), and with ``candidate_scores`` the
        candidates' scores (:meth:`_candidate_scores`); see the module docstring."""
        features = self._loss_and_scale()
        return torch.cat([features, self._candidate_scores()]) if self.candidate_scores else features

    def _candidate_scores(self) -> Tensor:
        """(pool.size,): for each layer that may fill the current slot, ``log(1 + support MSE)`` after one
        inner step (the env's optimiser and step size) of the network prefix + that layer, completed by
        the pool's output layer that gives the lowest such loss (the candidate itself in the output slot);
        −1 for the other layers and once the network is complete. Support points only (leak-free)."""
        scores = torch.full((self.pool.size,), -1.0, device=self.device)
        slot = len(self._chosen)
        if slot == self.n_slots:
            return scores
        valid = self.valid_actions()
        kind = self.pool.kind(valid[0])
        last = slot == self.n_slots - 1
        heads = [0] if last else list(range(self.pool.n_output))
        local = torch.tensor([i - self.pool.indices(kind).start for i in valid], device=self.device)
        prefix = {f"{s}.{name}": t for s, i in enumerate(self._chosen) for name, t in self.pool.layer(i).items()}
        per_candidate = {f"{slot}.{name}": t[local].repeat_interleave(len(heads), 0)
                         for name, t in self.pool.parts[kind].items()}  # fmt: skip
        if not last:
            head_index = torch.tensor(heads, device=self.device).repeat(len(valid))
            per_candidate |= {f"{slot + 1}.{name}": t[head_index] for name, t in self.pool.parts["output"].items()}
        n_layers = slot + (1 if last else 2)
        width = self.pool.parts["hidden"]["weight"].shape[1]
        model = MLP((1, *[width] * (n_layers - 1), 1))
        one_step = Adaptation(self.adaptation.optimizer, self.adaptation.lr, 1)
        x, y = self._task["support_x"], self._task["support_y"]

        def support_loss(candidate: Weights) -> Tensor:
            trained = adapt(model, {**prefix, **candidate}, x, y, one_step, mse)
            return mse(model(trained, x), y)

        losses = torch.vmap(support_loss)(per_candidate).view(len(valid), len(heads)).amin(dim=1)
        losses = torch.nan_to_num(losses.detach(), nan=1e6, posinf=1e6).clamp(0, 1e6)
        scores[torch.tensor(valid, device=self.device)] = losses.log1p()
        return scores

    def _loss_and_scale(self) -> Tensor:
        x, y = self._task["support_x"], self._task["support_y"]
        with torch.no_grad():
            if not self._chosen:
                loss, out = (y**2).mean(), x
            elif len(self._chosen) < self.n_slots:
                completions = self._completions(x)
                loss = ((completions - y) ** 2).mean(dim=(1, 2)).min()
                out = self._features(x)
            else:
                out = self.model(self.network_params(self._chosen), x)
                loss = mse(out, y)
            scale = out.pow(2).mean().sqrt()
        # A pool that grew huge (a fine-tune that blew up but stayed finite) can overflow here: inf or NaN
        # reads as the cap, as in the candidate scores, so the agent always sees a finite observation.
        features = torch.stack([loss, scale])
        return torch.nan_to_num(features, nan=1e6, posinf=1e6).clamp(0, 1e6).log1p()

    def _task_encoding(self) -> Tensor:
        if self.encoding == "oracle":
            return self._task["task_params"]
        x, y = self._task["support_x"][:, 0], self._task["support_y"][:, 0]
        order = torch.argsort(x)  # a fixed order, so the encoding does not depend on sampling order
        task = torch.zeros(self.k_encode, 3, device=x.device)
        task[: len(x)] = torch.stack([x[order], y[order], torch.ones(len(x), device=x.device)], dim=1)
        return task.flatten()


def create_pool(cfg: RemlConfig, generator: torch.Generator) -> LayerPool:
    """A fresh pool, drawn on the CPU from ``generator`` (move it with :meth:`LayerPool.to`)."""
    p = cfg.pool
    return linear_pool(1, p.width, 1, p.n_input, p.n_hidden, p.n_output, generator)


def make_env(
    pool: LayerPool,
    cfg: RemlConfig,
    distribution: TaskDistribution,
    shots: Sequence[int],
    encoding: str,
    write_back: bool | None = None,
) -> RegressionCompositionEnv:
    """The composition environment of ``cfg``; training tasks draw K from ``shots`` every episode."""
    return RegressionCompositionEnv(
        pool,
        distribution,
        depth=cfg.depth,
        k_support=tuple(shots),
        k_query=cfg.k_query,
        inner_optimizer=cfg.inner_optimizer,
        inner_lr=cfg.inner_lr,
        inner_steps=cfg.inner_steps,
        encoding=encoding,  # type: ignore[arg-type]
        reward=cfg.reward,
        reward_scale=cfg.reward_scale,
        write_back=cfg.write_back if write_back is None else write_back,
        blend=cfg.blend,
        pool_update=cfg.pool_update,
        meta_lr=cfg.meta_lr,
        first_order=cfg.first_order,
        slot_pools=cfg.slot_pools,
        candidate_scores=cfg.candidate_scores,
    )


@dataclass
class RegressionComposer(Composer):
    """A trained agent and its pool, composing one network per task from the task's support points
    (and, for the oracle encoding, its true parameters), scored by the harness like a checkpoint."""

    encoding: str = "support"
    variant: str = "thesis"
    step_sizes: dict[int, float] = field(default_factory=dict)  # K -> test-time step size
    info: dict[str, Any] = field(default_factory=dict)
    inputs: InputKind = "x"
    invalid_rates: dict[int, float] = field(default_factory=dict)  # K -> remapped choices when last composed

    @property
    def method(self) -> str:
        return reml_method(self.agent, self.encoding, self.variant)

    @property
    def pool(self) -> LayerPool:
        return self.env.pool

    @property
    def model(self) -> MLP:
        return self.env.model

    def step_size(self, k: int) -> float:
        if k not in self.step_sizes:
            raise ArtifactError(f"the {self.method} agent has step sizes for K in {sorted(self.step_sizes)}, not {k}")
        return self.step_sizes[k]

    def initial_params(self, tasks: TaskSet) -> tuple[Weights, bool]:
        """Per-task initial parameters, stacked along a leading task dimension (second value: True).

        Reads the tasks' support points only (and, for the oracle encoding, their true parameters);
        query points are never touched.
        """
        composed = self.compose(self._options(tasks, i) for i in range(len(tasks)))
        self.invalid_rates[tasks.k_max] = composed.invalid_rate
        return composed.params, True

    def _options(self, tasks: TaskSet, i: int) -> dict[str, Any]:
        options: dict[str, Any] = {"support": (tasks.support_x[i], tasks.support_y[i])}
        if self.encoding == "oracle":
            options["task_params"] = tasks.task_params[i]
        return options


@dataclass
class AblationComposer:
    """``reml_random`` or ``reml_fixed`` (:mod:`reml.methods.reml.ablations`) on a trained agent's pool,
    scored by the harness like the agent: the same pool and network, only the choice of layers differs.

    ``reml_random`` draws task i's composition from ``generator(seed, "reml_random/<stream>")`` (the same
    composition for task i at every K, and never a function of the task); ``reml_fixed`` uses ``layers``.
    """

    method: str
    env: RegressionCompositionEnv
    step_sizes: dict[int, float]
    seed: int
    stream: str  # "val" while tuning, "test" when scored
    layers: tuple[int, ...] = ()  # reml_fixed's composition
    inputs: InputKind = "x"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> MLP:
        return self.env.model

    def step_size(self, k: int) -> float:
        if k not in self.step_sizes:
            raise ArtifactError(f"{self.method} has step sizes for K in {sorted(self.step_sizes)}, not {k}")
        return self.step_sizes[k]

    def compositions(self, n: int) -> list[list[int]]:
        if self.method == "reml_fixed":
            return [list(self.layers)] * n
        rng = generator(self.seed, f"reml_random/{self.stream}")
        if self.env.slot_pools:
            return [self._random_slot_composition(rng) for _ in range(n)]
        return random_compositions(self.env.pool, self.env.n_slots, n, rng)

    def _random_slot_composition(self, rng: torch.Generator) -> list[int]:
        """A composition uniform over the valid ones of a slot-pool environment (each slot's own layers)."""
        hidden = [self.env.slot_layers(s) for s in range(1, self.env.n_slots - 1)]
        slots = [list(self.env.pool.indices("input")), *hidden, list(self.env.pool.indices("output"))]
        return [layers[int(torch.randint(len(layers), (), generator=rng))] for layers in slots]

    def initial_params(self, tasks: TaskSet) -> tuple[Weights, bool]:
        """Per-task networks, stacked; reads nothing of the tasks but their number."""
        return compose_layers(self.env, self.compositions(len(tasks))).params, True


def ablations(composer: RegressionComposer, stream: str = "test") -> list[AblationComposer]:
    """``reml_random`` and ``reml_fixed`` on ``composer``'s pool, with the step sizes tuned at training."""
    meta = composer.info["ablations"]
    seed = composer.info["seed"]
    return [
        AblationComposer("reml_random", composer.env, _int_keys(meta["reml_random"]["step_sizes"]), seed, stream),
        AblationComposer(
            "reml_fixed",
            composer.env,
            _int_keys(meta["reml_fixed"]["step_sizes"]),
            seed,
            stream,
            tuple(meta["reml_fixed"]["layers"]),
        ),  # fmt: skip
    ]


def _int_keys(step_sizes: dict[str, float]) -> dict[int, float]:
    return {int(k): float(v) for k, v in step_sizes.items()}


def tune_ablations(composer: RegressionComposer, val_tasks: TaskSet, params: SinusoidParams, seed: int) -> dict:
    """The ablations' metadata: ``reml_fixed``'s composition (the agent's most frequent on the validation
    tasks, over every K) and both ablations' step sizes, tuned on the validation tasks like the agent's."""
    layers = []
    for k in params.adaptation.shots:
        view = val_tasks.with_shots(k)
        layers += composer.compose(composer._options(view, i) for i in range(len(view))).layers
    fixed = most_chosen(layers)
    out: dict[str, Any] = {"reml_fixed": {"layers": fixed, "val_share": layers.count(fixed) / len(layers)}}
    for method in ("reml_random", "reml_fixed"):
        ablation = AblationComposer(method, composer.env, {}, seed, "val", tuple(fixed))
        step_sizes, tuning = tune_per_k(ablation.model, ablation.initial_params, "x", val_tasks, params.adaptation)
        out.setdefault(method, {}).update(step_sizes={str(k): v for k, v in sorted(step_sizes.items())},
                                          step_size_tuning=tuning)  # fmt: skip
    return out


class Checkpoints(BaseCallback):
    """Every ``every`` timesteps, the SB3 policy zip and the pool go to ``directory/step<N>/``."""

    def __init__(self, env: RegressionCompositionEnv, directory: Path, every: int) -> None:
        super().__init__()
        self.env, self.directory, self.every = env, directory, every

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            out = self.directory / f"step{self.num_timesteps}"
            out.mkdir(parents=True, exist_ok=True)
            save_sb3_zip(self.model, out / "policy.zip")
            save_pool(out / "pool.safetensors", self.env.pool, _pool_meta(self.env.pool, {}))
        return True


def _pool_meta(pool: LayerPool, config: dict[str, Any]) -> dict[str, Any]:
    return {"kinds": {k: [pool.indices(k).start, pool.indices(k).stop] for k in KINDS}, "config": config}


def train(
    params: SinusoidParams,
    agent: str,
    encoding: str,
    variant: str,
    seed: int,
    val_tasks: TaskSet,
    directory: Path,
    *,
    device: torch.device,
    distribution: TaskDistribution | None = None,
) -> list[dict[str, float]]:
    """Train one REML agent and its pool (``train_reml``) on ``device``, then tune its test-time step size
    per K on the validation tasks; the agent, its pool and checkpoints go to ``directory``. Returns the
    training curve.

    Training tasks are drawn fresh from ``distribution`` (default: the sinusoids) every episode (K drawn
    from ``adaptation.shots``); the validation tasks only tune the step sizes, after training.
    """
    cfg, reml_cfg, shots = params.train_reml, params.reml_for(variant), params.adaptation.shots
    if max(shots) > val_tasks.k_max:
        raise ConfigError(
            f"adaptation.shots: K = {max(shots)} exceeds the {val_tasks.k_max} points of the validation tasks"
        )
    distribution = distribution or SinusoidDistribution.of(params.sinusoid)
    pool = create_pool(reml_cfg, generator(seed, "reml/pool")).to(device)  # same initial pool for every agent
    env = make_env(pool, reml_cfg, distribution, shots, encoding)
    algorithm = make_agent(agent, env, cfg.ppo, seed)
    curve = TrainingCurve(cfg.log_every)
    start = time.perf_counter()
    algorithm.learn(
        cfg.timesteps,
        callback=[curve, Checkpoints(env, directory / "checkpoints", cfg.checkpoint_every)],
        progress_bar=sys.stdout.isatty(),
    )
    seconds = time.perf_counter() - start
    print(f"{agent} ({encoding}, {variant}, seed {seed}): {cfg.timesteps} timesteps in {seconds:.1f} s "
          f"({cfg.timesteps / seconds:.0f}/s)")  # fmt: skip
    for row in curve.rows[:: max(1, len(curve.rows) // 5)] + curve.rows[-1:]:
        print("  " + ", ".join(f"{k} {v:g}" for k, v in row.items()))

    frozen = make_env(env.pool, reml_cfg, distribution, shots, encoding, write_back=False)
    composer = RegressionComposer(agent, algorithm, frozen, encoding, variant)
    step_sizes, tuning = tune_per_k(composer.model, composer.initial_params, "x", val_tasks.to(device),
                                    params.adaptation)  # fmt: skip
    assert composer.pool is env.pool, "composing for validation tasks must not modify the pool"
    composer.step_sizes = step_sizes
    info = {
        "seed": seed,
        "timesteps": cfg.timesteps,
        "step_size_tuning": tuning,
        "pool_chosen": env.pool.chosen.tolist(),
        "ablations": tune_ablations(composer, val_tasks.to(device), params, seed),
    }
    assert composer.pool is env.pool, "the ablations must not modify the pool"
    save_composer(directory, composer, reml_cfg, cfg.ppo, shots, info)
    print(f"test-time step sizes (tuned on validation tasks): {step_sizes}; config {to_dict(cfg.ppo)}")
    return curve.rows


def save_composer(
    directory: Path, composer: RegressionComposer, cfg: RemlConfig, ppo: PpoConfig, shots: Sequence[int],
    info: dict[str, Any],
) -> None:  # fmt: skip
    """``directory``: the agent's policy (``policy.zip``, ``policy.safetensors``: weights, configs, step sizes,
    ``info``) and its pool (``pool.safetensors``)."""
    meta = {
        "agent": composer.agent,
        "encoding": composer.encoding,
        "variant": composer.variant,
        "reml": to_dict(cfg),
        "ppo": to_dict(ppo),
        "shots": list(shots),
        "step_sizes": {str(k): lr for k, lr in sorted(composer.step_sizes.items())},
        "info": info,
    }
    save_agent(directory, composer.algorithm, meta)
    save_pool(directory / "pool.safetensors", composer.pool, _pool_meta(composer.pool, to_dict(cfg)))


def load_composer(
    directory: str | Path, distribution: TaskDistribution, made_by: str, *, device: torch.device
) -> RegressionComposer:
    """Rebuild a trained agent from its safetensors files (weights only: nothing is unpickled), its policy
    and pool on ``device``."""
    directory = Path(directory)
    path, state, meta = load_agent_file(directory, made_by, device=device)
    pool, _ = load_pool(directory / "pool.safetensors", made_by, device=device)
    with reading(path, "REML agent", made_by):
        cfg = from_dict(RemlConfig, meta["reml"], "reml")
        ppo = from_dict(PpoConfig, meta["ppo"], "ppo")
        env = make_env(pool, cfg, distribution, meta["shots"], meta["encoding"], write_back=False)
        step_sizes = {int(k): float(v) for k, v in meta["step_sizes"].items()}
    check_step_sizes(path, step_sizes)
    algorithm = restore_agent(meta["agent"], env, ppo, state, path, made_by)
    return RegressionComposer(meta["agent"], algorithm, env, meta["encoding"], meta["variant"], step_sizes,
                              meta["info"])  # fmt: skip
