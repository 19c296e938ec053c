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
        random_a = ablation("reml_random", c, len(a), sampler, 0, "navigation2d", 0, 6)
        random_b = ablation("reml_random", c, len(b), sampler, 0, "navigation2d", 0, 6)
        other_run = ablation("reml_random", c, len(a), sampler, 0, "navigation2d", 1, 6)
        fixed_a = ablation("reml_fixed", c, len(a), sampler, 0, "navigation2d", 0, 6)
        fixed_b = ablation("reml_fixed", c, len(b), sampler, 0, "navigation2d", 0, 6)
        fixed_fewer = ablation("reml_fixed", c, 2, sampler, 0, "navigation2d", 0, 6)  # e.g. the validation tasks
    # the same networks whatever the test tasks (the task is never read) ...
    assert all(torch.equal(random_a.params[k], random_b.params[k]) for k in random_a.params)
    assert all(torch.equal(fixed_a.params[k], fixed_b.params[k]) for k in fixed_a.params)
    assert fixed_fewer.extra["layers"] == fixed_a.extra["layers"]  # chosen on n_choose tasks, whatever is scored
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
    info = {m: {"test_rollouts": 20, "training": {}, "runs": 1, "tasks": 0, "env_steps": 0, "step_sizes": [0.1]}
            for m in cfg.methods}  # fmt: skip
    info["maml_trpo"]["step_sizes"] = [0.05]
    info["oracle"] |= {"unadapted": True}
    info[cfg.reml.agent] |= {"training": training, "runs": 3, "tasks": 600, "env_steps": 1_800_000,
                             "probe_rollouts": 10, "invalid_rate": 0.0, "distinct_policies": 1,
                             "aligned_by": "episodes",
                             "compositions": [{"layers": [0, 2, 6], "tasks": 4, "mean_task": [0.0, 0.0]}]}  # fmt: skip
    metrics = {"navigation2d": {m: leaves(c, c.per_task[None]) for m, c in per_task.items()}}
    methods = {"n_test": 4, "step_sizes": [0.1], "step_scales": [0.5, 1.0, 2.0], "n_val": 10, "gamma": 0.99,
               "families": {"navigation2d": {"horizon": 100, "frame_skip": None, "methods": info,
                                             "paired": paired}}}  # fmt: skip
    text = section(metrics, methods, "fig.png")
    assert "| maml_trpo | 1 | 0 | 0 | 0.05 | 0.00 ± 0.00 | diverged on 1/4, median 1.00 |" in text
    assert "| reml_maskable | 3 | 600 | 1,800,000 | 0.1 |" in text
    assert "| oracle | 1 | 0 | 0 | – |" in text  # not fine-tuned: no step size
    assert "`oracle` is not fine-tuned (Finn's oracle, `n_itr=1`): its 0-step return in every column" in text
    assert "step sizes 0.1 × a scale chosen per method from 0.5, 1, 2 on 10 validation tasks per family" in text
    assert "its column 0 is that probe batch's return and column c the composed policy after c - 1 steps" in text
    assert "| reml_random | 1 | 0 | 0 | higher than reml_random (+1.00 ± 0.00) |" in text
    assert "not comparable with maml_trpo (the difference; not finite on some tasks) (1 tasks diverged)" in text
    assert "compositions of the same pools on navigation2d? yes: higher after 2 of 2 steps, never lower." in text


def test_the_report_names_each_locomotion_familys_control_interval_beside_finns():
    from reml.families.rl.report import environment

    assert environment("cheetah_dir", {"frame_skip": 5, "horizon": 200}).endswith(
        "frame_skip 5: 0.05 s per action, 10 s per episode (rllab, Finn's: 0.01 s, 2 s)"
    )
    assert "frame_skip 2: 0.02 s per action, 4 s per episode (rllab, Finn's: 0.02 s, 4 s)" in environment(
        "ant_vel", {"frame_skip": 2, "horizon": 200}
    )
    assert (
        environment("navigation2d", {"frame_skip": None}) == "2D navigation (point mass, goal ~ U[-0.5, 0.5]², H = 100)"
    )


def test_the_protocol_table_names_each_difference_from_finn_and_its_param():
    from reml.families.rl.report import protocol_table

    maml = {"iterations": 100, "max_kl": 0.02, "inner_lr": 0.1, "select_iterate": "validation", "validation_tasks": 20,
            "selected_iteration": 90}  # fmt: skip
    info = {"maml_trpo": {"training": maml, "step_scale": 1.0}, "pretrained": {"training": {}, "step_scale": 2.0},
            "oracle": {"training": {}, "step_scale": 0.5, "unadapted": True}}  # fmt: skip
    family = {"cheetah_dir": {"frame_skip": 1, "methods": info}}
    methods = {"step_sizes": [0.1, 0.05], "step_scales": [0.5, 1.0, 2.0], "n_val": 40, "oracle": "unadapted",
               "reml_alignment": "episodes", "families": family}  # fmt: skip
    text = "\n".join(protocol_table(methods))
    assert (
        "| cheetah_dir: control interval | 0.01 s per action (frame_skip 1) | 0.01 s | rl.families.cheetah_dir." in text
    )
    assert "cheetah_dir: maml_trpo ×1, pretrained ×2 |" in text  # the chosen scales; not the unadapted oracle's
    assert "| cheetah_dir: maml_trpo | 100 iterations, KL 0.02, α 0.1; checkpoint best on 20 validation tasks: " in text
    assert "iteration 90 | the table's checkpoint: 100 iterations, KL 0.02" in text
    assert "| oracle row | not fine-tuned (0-step return; `oracle_finetuned` beside it) |" in text
    assert "| REML's rows | aligned by the episodes of the task seen" in text
