"""The RL evaluation harness: each step scored on the episodes it adapts from."""

import torch

from reml.core.seeding import generator
from reml.families.rl.navigation import NAVIGATION2D
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.sampler import Sampler


def test_evaluation_harness_steps_from_the_episodes_it_scores():
    """Step 0 is the start policy's return on the sampled episodes; a zero step size leaves it unchanged."""
    from reml.families.rl.evaluate import adaptation_returns

    policy = GaussianPolicy(2, 2)
    params = policy.init(generator(0, "t"))
    tasks = NAVIGATION2D.sample_tasks(4, 0, stream="test")
    with Sampler(NAVIGATION2D, 8) as sampler:
        curve = adaptation_returns(policy, params, tasks, sampler, (1e-12, 1e-12), 2, 0.99, generator(0, "e"))
        first = sampler.sample(policy, params, tasks, 2, generator(0, "e"))
    assert curve.per_task.shape == (4, 3)
    assert torch.allclose(curve.per_task[:, 0], first.returns.mean(1).double())
    assert torch.isfinite(curve.ci95).all()
    # Each step samples fresh episodes from the same generator; with a ~0 step size the policy stays put,
    # so step s scores exactly the start policy's next draw of episodes.
    rng = generator(0, "e")
    with Sampler(NAVIGATION2D, 8) as sampler:
        draws = [sampler.sample(policy, params, tasks, 2, rng).returns.mean(1).double() for _ in range(3)]
    assert torch.allclose(curve.per_task, torch.stack(draws, dim=1), atol=1e-5)


def test_a_policy_trained_at_another_control_interval_is_refused(tmp_path):
    """A checkpoint records the frame_skip it was trained with; scoring it at another interval would
    compare returns of another scale, so evaluate_rl refuses it and names the stage to rerun."""
    import pytest

    from reml.core.io import ArtifactError
    from reml.families.rl import rl_family
    from reml.families.rl.evaluate import _check_fits

    path = tmp_path / "maml_trpo-cheetah_dir-0.safetensors"
    _check_fits(path, 17, 6, rl_family("cheetah_dir", 1), False, {"frame_skip": 1}, "train_maml_trpo@x")
    with pytest.raises(ArtifactError, match=r"trained with frame_skip 5, but rl\.families\.cheetah_dir\.frame_skip "
                       r"is 1 .*rerun `dvc repro train_maml_trpo@x`"):  # fmt: skip
        _check_fits(path, 17, 6, rl_family("cheetah_dir", 1), False, {"frame_skip": 5}, "train_maml_trpo@x")
    with pytest.raises(ArtifactError, match="trained with frame_skip None"):  # written before the setting existed
        _check_fits(path, 17, 6, rl_family("cheetah_dir", 5), False, {}, "train_maml_trpo@x")


def test_reml_aligned_by_episodes_reports_its_probe_then_one_step_fewer():
    """Aligned by episodes, REML's column 0 is its probe batch and column c its composed policy after c - 1
    steps (the first S - 1 step sizes), with the scoring noise every method gets; aligned by steps, the
    composed policy after 0..S steps. A start without a probe is scored by steps either way."""
    from reml.families.rl.evaluate import Start, adaptation_returns, scored_returns

    policy = GaussianPolicy(2, 2)
    tasks = NAVIGATION2D.sample_tasks(3, 0, stream="test")
    stacked = {k: v.expand(3, *v.shape).clone() for k, v in policy.init(generator(0, "t")).items()}
    probe = torch.tensor([-5.0, -6.0, -7.0], dtype=torch.float64)
    reml = Start(policy, stacked, False, True, {}, {}, probe)
    plain = Start(policy, stacked, False, True, {})
    sizes = (0.1, 0.05, 0.05)
    with Sampler(NAVIGATION2D, 6) as sampler:
        aligned = scored_returns(reml, tasks, sampler, sizes, 2, 0.99, generator(0, "e"), "episodes")
        by_steps = scored_returns(reml, tasks, sampler, sizes, 2, 0.99, generator(0, "e"), "steps")
        unprobed = scored_returns(plain, tasks, sampler, sizes, 2, 0.99, generator(0, "e"), "episodes")
        fewer = adaptation_returns(policy, stacked, tasks, sampler, sizes[:2], 2, 0.99, generator(0, "e"),
                                   per_task=True).per_task  # fmt: skip
    assert aligned.shape == by_steps.shape == (3, 4)
    assert torch.equal(aligned[:, 0], probe) and torch.equal(aligned[:, 1:], fewer)
    assert torch.equal(by_steps, unprobed) and torch.equal(by_steps[:, :3], fewer)  # same noise, same steps


def test_the_unadapted_row_repeats_the_0_step_return():
    from reml.families.rl.evaluate import unadapted

    per_run = torch.tensor([[[1.0, 5.0, 9.0], [2.0, 0.0, 3.0]]])
    assert unadapted(per_run).tolist() == [[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]]


def test_step_scale_choice_is_the_best_finite_validation_objective():
    import math

    from reml.families.rl.evaluate import choose_scale, validation_objective

    assert validation_objective(torch.tensor([[-100.0, 1.0, 3.0], [-100.0, 3.0, 5.0]])) == 3.0  # column 0 left out
    assert math.isnan(validation_objective(torch.tensor([[0.0, 1.0, float("-inf")]])))
    assert choose_scale({0.5: 1.0, 1.0: 3.0, 2.0: math.nan}) == 1.0
    assert choose_scale({0.5: 3.0, 1.0: 3.0}) == 0.5  # a tie: the first listed
    assert choose_scale({1.0: math.nan, 0.5: math.nan}) == 0.5  # all diverged: the smallest


def test_each_methods_step_scale_is_chosen_on_validation_tasks_only(params_copy):
    """tune_scale scores every scale on the family's validation stream (never the test tasks) with one noise
    stream, and picks the best objective: checked against the same computation written out by hand."""
    import dataclasses

    from reml.families.rl import config
    from reml.families.rl.checkpoint import PolicyCheckpoint
    from reml.families.rl.evaluate import Start, scored_returns, tune_scale, validation_objective

    cfg = config.load(params_copy).rl
    ev = dataclasses.replace(cfg.evaluate, n_val=3, step_scales=(0.5, 5.0, 50.0))
    budget = dataclasses.replace(cfg.family("navigation2d"), test_rollouts=2)
    cfg = dataclasses.replace(cfg, evaluate=ev, families={**cfg.families, "navigation2d": budget})
    policy = GaussianPolicy(2, 2)
    params = policy.init(generator(0, "t"))
    checkpoints = {"pretrained": [PolicyCheckpoint("pretrained", "navigation2d", policy, params, False, {})]}
    validation = NAVIGATION2D.sample_tasks(3, ev.seed, stream="validation")
    assert not (validation[:, None] == NAVIGATION2D.sample_tasks(ev.n_test, ev.seed, stream="test")[None]).all(-1).any()
    with Sampler(NAVIGATION2D, 6) as sampler:
        chosen, objectives = tune_scale(
            cfg, "pretrained", checkpoints, "navigation2d", sampler, device=torch.device("cpu")
        )
        by_hand = {s: validation_objective(scored_returns(Start(policy, params, False, False, {}), validation, sampler,
                                                          ev.scaled(s), 2, cfg.gamma, generator(ev.seed,
                                                          "rl/validate/navigation2d"), "episodes"))
                   for s in ev.step_scales}  # fmt: skip
    assert objectives == {f"{s:g}": round(v, 4) for s, v in by_hand.items()}
    assert chosen == max(by_hand, key=by_hand.get)
    assert len(set(by_hand.values())) == 3  # the scales do differ, so the choice can go wrong
