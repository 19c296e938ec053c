"""Research question 4: the mixture of task families draws every family, and every method trains on it and
is scored per family through the same harness."""

import math

import pytest
import torch
import yaml

from reml.core.config import ConfigError
from reml.core.seeding import generator
from reml.families.sinusoid import mixed
from reml.families.sinusoid.config import MIXED_FAMILIES, parse
from reml.families.sinusoid.tasks import UNRELATED_FAMILIES, SinusoidDistribution, fixed_task_sets
from tests.helpers import REPO

CPU = torch.device("cpu")


def params_data():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def small(data):
    data["train_reml"].update(timesteps=100, checkpoint_every=50, log_every=50)
    data["train_reml"]["ppo"].update(n_steps=50, batch_size=25)
    data["train_maml"]["maml_matched"]["iterations"] = data["train_pretrained_matched"]["iterations"] = 20
    data["train_pretrained"]["iterations"] = 30
    data["adaptation"]["lr_grid"] = [0.01]
    data["generate_tasks"].update(n_test=6, n_unrelated=4, n_val=4)
    data["replicates"] = [0]
    data["train_mixed"].update(methods=["pretrained", "maml_matched", "reml_maskable"], n_val=3)
    return parse(data)


def test_the_mixture_families_are_the_sinusoids_and_research_question_3s():
    assert MIXED_FAMILIES == ("sinusoid", *UNRELATED_FAMILIES)


def test_a_mixture_draws_each_family_with_its_own_function_and_pads_the_parameters():
    params = parse(params_data())
    families = list(mixed.family_distributions(params).values())
    tasks = mixed.mixture(params).sample(400, 5, 7, generator(0, "mixture-test"))
    which = tasks.task_params[:, 0].long()
    counts = torch.bincount(which, minlength=len(families))
    assert counts.min() > 50, counts  # uniform over 5 families: about 80 each
    for i, family in enumerate(families):
        rows = which == i
        n_params = len(family.param_names)
        theta = tasks.task_params[rows, 1 : 1 + n_params]
        assert torch.all(tasks.task_params[rows, 1 + n_params :] == 0)
        assert torch.allclose(family.evaluate(theta, tasks.support_x[rows]), tasks.support_y[rows])
        assert torch.allclose(family.evaluate(theta, tasks.query_x[rows]), tasks.query_y[rows])
    again = mixed.mixture(params).sample(400, 5, 7, generator(0, "mixture-test"))
    assert torch.equal(again.support_y, tasks.support_y)


def test_the_validation_tasks_are_per_family_and_not_the_test_tasks():
    params = parse(params_data())
    val = mixed.validation_tasks(params)
    n_val = params.train_mixed.n_val
    assert len(val) == n_val * len(MIXED_FAMILIES)
    assert torch.equal(val.task_params[:, 0], torch.arange(len(MIXED_FAMILIES)).repeat_interleave(n_val).float())
    test, _, unrelated = fixed_task_sets(params)
    for tasks in (test, *unrelated.values()):  # no validation task has a test task's support points
        same = (val.support_x[:, None, :, 0] == tasks.support_x[None, :, : val.k_max, 0]).all(dim=2)
        assert not same.any()


def test_train_mixed_rejects_a_method_that_is_not_trained_and_a_reference_outside_the_methods():
    data = params_data()
    data["train_mixed"]["methods"] = ["pretrained", "reml_maskable_relative"]
    data["train_mixed"]["reference"] = "reml_maskable_relative"
    data["train_reml"]["variants"] = ["thesis"]
    data["evaluate_fewshot"]["methods"] = ["scratch", "reml_maskable"]
    data["evaluate_fewshot"]["long_finetune"]["methods"] = ["scratch"]
    with pytest.raises(ConfigError, match=r"^train_mixed\.methods: \['reml_maskable_relative'\] use variants"):
        parse(data)
    data = params_data()
    data["train_mixed"]["reference"] = "maml"
    with pytest.raises(ConfigError, match=r"^train_mixed\.reference: 'maml' must be a REML row"):
        parse(data)
    data = params_data()
    data["train_mixed"]["families"] = ["sinusoid", "circles"]
    with pytest.raises(ConfigError, match=r"^train_mixed\.families: unknown \['circles'\]"):
        parse(data)


def test_every_method_trains_on_the_mixture_and_is_scored_per_family(tmp_path):
    params = small(params_data())
    for method in params.train_mixed.methods:
        directory = tmp_path / f"{method}-0"
        directory.mkdir()
        log = mixed.train(params, method, 0, directory, device=CPU)
        assert len(log) and all(math.isfinite(v) for v in log.iloc[:, 1])
    test, _, unrelated = fixed_task_sets(params)
    result = mixed.evaluate(params, {"sinusoid": test, **unrelated}, tmp_path, device=CPU)
    assert list(result.scores) == list(MIXED_FAMILIES)
    rows = ["scratch", "scratch_deep", "pretrained", "maml_matched", "reml_maskable", "reml_random", "reml_fixed"]
    for family, by_method in result.scores.items():
        assert list(by_method) == rows
        assert by_method["pretrained"]["k10"]["n_runs"] == 1
        assert result.paired[family]["reference"] == "reml_maskable"
        assert set(result.paired[family]) == {"reference", *(r for r in rows if r != "reml_maskable")}
    assert result.methods["maml_matched"]["training_tasks"] == params.reml_tasks()
    sinusoid_only = SinusoidDistribution().sample(3, 10, 10, generator(0, "x"))
    assert len(sinusoid_only) == 3  # the default distribution is untouched by the mixture's code
