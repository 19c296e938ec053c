"""MAML-TRPO: a short run on 2D navigation must learn; the meta-update's threads are deterministic."""

import numpy as np
import pytest
import torch

from reml.families.rl.maml_trpo import MamlTrpoSettings, torch_threads, train_maml_trpo
from reml.families.rl.navigation import NAVIGATION2D
from reml.families.rl.policy import GaussianPolicy
from reml.families.rl.sampler import Sampler

CPU = torch.device("cpu")


def test_short_maml_trpo_improves_the_adapted_return_on_navigation():
    """Can fail: six meta-iterations must lift the mean return after the inner step (Finn et al.'s
    Fig. 5: MAML's navigation policy heads for the goal after one step)."""
    settings = MamlTrpoSettings(iterations=6, meta_batch=10, rollouts=10, inner_lr=0.1, cg_iters=5)
    policy = GaussianPolicy(2, 2)
    with Sampler(NAVIGATION2D, 100) as sampler:
        _, log = train_maml_trpo(policy, sampler, settings, seed=0, device=CPU)
        _, first_two = train_maml_trpo(
            policy, sampler, MamlTrpoSettings(2, 10, 10, 0.1, cg_iters=5), seed=0, device=CPU
        )
    after = [r["return_after"] for r in log.rows]
    assert np.mean(after[-2:]) > after[0] + 15, after
    assert all(0 < r["kl"] <= 0.01 for r in log.rows)
    assert first_two.rows == log.rows[:2]  # deterministic with a seed


def test_maml_trpo_on_two_threads_is_deterministic_and_restores_the_thread_count():
    """The meta-update's own thread count: same bits on every run, and the caller's count comes back."""
    settings = MamlTrpoSettings(2, 10, 10, 0.1, cg_iters=5, threads=2)
    policy = GaussianPolicy(2, 2)
    runs, caller = [], torch.get_num_threads()
    with Sampler(NAVIGATION2D, 100) as sampler:
        for _ in range(2):
            runs.append(train_maml_trpo(policy, sampler, settings, seed=0, device=CPU))
            assert torch.get_num_threads() == caller
    (first, first_log), (second, second_log) = runs
    assert first_log.rows == second_log.rows
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_torch_threads_restores_the_count_after_an_error():
    caller = torch.get_num_threads()
    inside = 3 if caller != 3 else 2
    with pytest.raises(RuntimeError, match="inside"), torch_threads(inside):
        assert torch.get_num_threads() == inside
        raise RuntimeError("inside")
    assert torch.get_num_threads() == caller


def test_iterate_selection_returns_the_best_validated_iterate():
    """select_iterate=validation measures the return after the inner step on validation tasks every
    validate_every iterations and after the last, and returns the best of those iterates (checked by
    measuring the returned parameters again); "last" returns the last iterate, measuring nothing."""
    from reml.families.rl.maml_trpo import validation_return

    base = dict(iterations=4, meta_batch=4, rollouts=4, inner_lr=0.1, cg_iters=3)
    picked = MamlTrpoSettings(**base, select_iterate="validation", validate_every=2, validation_tasks=3)
    policy = GaussianPolicy(2, 2)
    with Sampler(NAVIGATION2D, 16) as sampler:
        last, last_log = train_maml_trpo(policy, sampler, MamlTrpoSettings(**base), seed=0, device=CPU)
        best, log = train_maml_trpo(policy, sampler, picked, seed=0, device=CPU)
        again = validation_return(policy, best, sampler, picked, 0, CPU)
    measured = {r["iteration"]: r["validation_after"] for r in log.rows if "validation_after" in r}
    assert sorted(measured) == [2, 4] and "validation_after" not in last_log.rows[0]
    assert log.selected == max(measured, key=measured.get) and again == measured[log.selected]
    assert [r["return_after"] for r in log.rows] == [r["return_after"] for r in last_log.rows]  # training unchanged
    assert last_log.selected == 4
    if log.selected == 4:
        assert all(torch.equal(best[k], last[k]) for k in best)
    else:
        assert not all(torch.equal(best[k], last[k]) for k in best)
