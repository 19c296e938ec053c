"""REML's ablations for meta-RL (reml/families/rl/evaluate.py) and the report's REML comparisons
(reml/families/rl/report.py): random and fixed compositions of the agent's own pool, drawn without the
test tasks; a cell with diverged tasks shows their count and median, never a verdict from a non-finite mean."""

import torch

from reml.core.curve import Curve
from reml.families.rl.evaluate import ablation, comparisons, leaves
from reml.families.rl.navigation import NAVIGATION2D
from reml.families.rl.reml import RLComposer, RLCompositionEnv
from reml.families.rl.sampler import Sampler
from reml.methods.reml.agents import make_agent
from tests.families.rl.test_reml import PPO, SETTINGS, small_pool


def composer() -> RLComposer:
    env = RLCompositionEnv(small_pool(), torch.full((2,), -0.5), NAVIGATION2D, 2, 2, SETTINGS)
    return RLComposer("reml_maskable", make_agent("reml_maskable", env, PPO, seed=0), env, {"reml_episodes": 4})


def test_ablations_compose_valid_networks_of_the_pool_independently_of_the_test_tasks():
    c = composer()
    pool = c.env.pool
    kinds = [set(pool.indices(k)) for k in ("input", "hidden", "output")]
    a, b = NAVIGATION2D.sample_tasks(6, 0, stream="test"), NAVIGATION2D.sample_tasks(6, 1, stream="test")
    with Sampler(NAVIGATION2D, 12) as sampler:
        random_a = ablation("reml_random", c, a, sampler, 0, "navigation2d", 0)
        random_b = ablation("reml_random", c, b, sampler, 0, "navigation2d", 0)
        other_run = ablation("reml_random", c, a, sampler, 0, "navigation2d", 1)
        fixed_a = ablation("reml_fixed", c, a, sampler, 0, "navigation2d", 0)
        fixed_b = ablation("reml_fixed", c, b, sampler, 0, "navigation2d", 0)
    # the same networks whatever the test tasks (the task is never read) ...
    assert all(torch.equal(random_a.params[k], random_b.params[k]) for k in random_a.params)
    assert all(torch.equal(fixed_a.params[k], fixed_b.params[k]) for k in fixed_a.params)
    assert not all(torch.equal(random_a.params[k], other_run.params[k]) for k in random_a.params)
    # ... each exactly a valid composition of the pool's layers
    layers = fixed_a.extra["layers"]
    assert all(index in kind for index, kind in zip(layers, kinds, strict=True))
    for slot, index in enumerate(layers):
        assert torch.equal(fixed_a.params[f"{slot}.weight"][3], pool.layer(index)["weight"])
    for i in range(6):
        chosen = [next(j for j in kind if torch.equal(random_a.params[f"{s}.weight"][i], pool.layer(j)["weight"]))
                  for s, kind in enumerate(kinds)]  # fmt: skip
        assert len(chosen) == 3
    assert fixed_a.extra["distinct_policies"] == 1 and random_a.per_task


def test_leaves_count_diverged_tasks_and_give_the_median_and_the_runs_spread():
    per_run = torch.tensor([[[1.0, 2.0], [3.0, float("nan")], [5.0, 6.0]], [[1.0, 4.0], [3.0, 2.0], [5.0, 8.0]]])
    out = leaves(Curve(per_run.mean(dim=0)), per_run)
    assert out["n_runs"] == 2 and out["return_step0"] == 3.0 and "diverged_step0" not in out
    assert out["diverged_step1"] == 1 and out["median_step1"] == 3.0 and out["return_step1"] is None
    assert out["sd_seeds_step0"] == 0.0


def test_report_shows_diverged_cells_budgets_and_whether_the_agent_beats_random_composition():
    from reml.families.rl import config
    from reml.families.rl.report import section
    from tests.helpers import REPO

    cfg = config.load(REPO / "params.yaml").rl
    good = torch.tensor([[1.0, 2.0]] * 4) + torch.arange(4.0)[:, None]
    per_task = {m: Curve(good - 1.0) for m in cfg.methods}
    per_task[cfg.reml.agent] = Curve(good)
    per_task["maml_trpo"] = Curve(torch.tensor([[0.0, float("inf")], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]))
    paired = comparisons(cfg, per_task)
    training = {"reml_episodes": 600, "inner_steps": 1, "rollouts": 10}
    info = {m: {"test_rollouts": 20, "training": {}, "runs": 1, "tasks": 0, "env_steps": 0} for m in cfg.methods}
    info[cfg.reml.agent] |= {"training": training, "runs": 3, "tasks": 600, "env_steps": 1_800_000,
                             "probe_rollouts": 10, "invalid_rate": 0.0, "distinct_policies": 1,
                             "compositions": [{"layers": [0, 2, 6], "tasks": 4, "mean_task": [0.0, 0.0]}]}  # fmt: skip
    metrics = {"navigation2d": {m: leaves(c, c.per_task[None]) for m, c in per_task.items()}}
    methods = {"n_test": 4, "step_sizes": [0.1], "gamma": 0.99,
               "families": {"navigation2d": {"horizon": 100, "methods": info, "paired": paired}}}  # fmt: skip
    text = section(metrics, methods, "fig.png")
    assert "| maml_trpo | 1 | 0 | 0 | 0.00 ± 0.00 | diverged on 1/4, median 1.00 |" in text
    assert "| reml_maskable | 3 | 600 | 1,800,000 |" in text
    assert "| reml_random | 1 | 0 | 0 | higher than reml_random (+1.00 ± 0.00) |" in text
    assert "not comparable with maml_trpo (the difference; not finite on some tasks) (1 tasks diverged)" in text
    assert "compositions of the same pools on navigation2d? yes: higher after 2 of 2 steps, never lower." in text
