"""The rl section of params.yaml: each bad value named by its key; committed run params still load."""

import pytest

from tests.helpers import REPO


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(run=["hopper"]), r"rl\.run: \['hopper'\] have no budget under rl\.families"),
        (lambda r: r["families"].update(hopper=r["families"]["ant_dir"]), r"rl\.families: unknown \['hopper'\]"),
        (lambda r: r["families"]["navigation2d"].update(meta_batch=0), r"rl\.families\.navigation2d\.meta_batch: must"),
        (lambda r: r["evaluate"].update(step_sizes=[]), r"rl\.evaluate\.step_sizes: must list at least one"),
        (lambda r: r["maml_trpo"].update(ls_ratio=1.5), r"rl\.maml_trpo\.ls_ratio: must be in \(0, 1\)"),
        (lambda r: r["maml_trpo"].update(threads=0), r"rl\.maml_trpo\.threads: must be >= 1, got 0"),
        (lambda r: r["sampler"].update(n_envs=5), r"rl\.sampler\.n_envs: must be a multiple of workers \(2\)"),
        (lambda r: r["sampler"].update(pin_workers="yes"), r"rl\.sampler\.pin_workers: got 'yes'; allowed"),
        (lambda r: r["sampler"].update(pin_workers=1), r"rl\.sampler\.pin_workers: got 1; allowed: true, false"),
        (lambda r: r["reml"].update(agent="dqn"), r"rl\.reml\.agent: must be one of \['reml_ppo'"),
        (lambda r: r["families"]["cheetah_dir"].update(return_scale=0), r"rl\.families\.cheetah_dir\.return_scale"),
        (
            lambda r: r["families"]["cheetah_vel"].update(reml_episodes=100),
            r"rl\.families\.cheetah_vel\.reml_episodes: must be a multiple of 30 .*got 100; e\.g\. 90 or 120",
        ),
        (lambda r: r.update(gamma=0), r"rl\.gamma: must be in \(0, 1\]"),
        (
            lambda r: r["families"]["navigation2d"].update(frame_skip=5),
            r"rl\.families\.navigation2d\.frame_skip: must be null: navigation2d has no simulator, got 5",
        ),
        (
            lambda r: r["families"]["cheetah_vel"].update(frame_skip=None),
            r"rl\.families\.cheetah_vel\.frame_skip: must be a positive integer for a MuJoCo family .*got None",
        ),
        (
            lambda r: r["families"]["ant_dir"].update(frame_skip=0),
            r"rl\.families\.ant_dir\.frame_skip: must be a positive integer \(MuJoCo steps per action\) or null, got 0",
        ),
        (
            lambda r: r["families"]["ant_dir"].update(frame_skip=1.5),
            r"rl\.families\.ant_dir\.frame_skip: expected an integer",
        ),
        (
            lambda r: r["families"]["cheetah_dir"].update(max_kl=float("nan")),
            r"rl\.families\.cheetah_dir\.max_kl: must be a finite number, got nan",
        ),
        (lambda r: r.update(replicates=[0, 0]), r"rl\.replicates: must list one or more distinct integers"),
        (lambda r: r.update(baseline_replicates=[]), r"rl\.baseline_replicates: must list one or more distinct"),
        (
            lambda r: r["families"]["navigation2d"].update(reml_episodes=630),
            r"rl\.families\.navigation2d\.reml_episodes: must be a multiple of families\.navigation2d\.meta_batch "
            r"\(20\): maml_trpo_matched meta-trains on REML's 630 training tasks",
        ),
    ],
)
def test_bad_rl_params_are_named(params_copy, edit, message):
    import yaml

    from reml.families.rl import config

    data = yaml.safe_load(params_copy.read_text())
    edit(data["rl"])
    params_copy.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=message):
        config.load(params_copy)


def test_the_paper_cheetah_dir_run_params_still_load():
    """docs/rl.md reruns that run with `cp reports/paper_cheetah_dir/params-used.yaml params.yaml`: the file
    must keep up with keys added since (each added with the value that reproduces the run)."""
    from reml.families.rl import config

    cfg = config.load(REPO / "reports/paper_cheetah_dir/params-used.yaml").rl
    assert cfg.run == ("cheetah_dir",) and cfg.family("cheetah_dir").iterations == 60
    assert cfg.maml_trpo.threads == 1  # that run's meta-update ran on one thread


def test_matched_budgets_follow_reml_training_tasks():
    """maml_trpo_matched and pretrained_matched train on as many tasks as REML composes for."""
    from reml.families.rl import config

    cfg = config.load(REPO / "params.yaml").rl
    budget = cfg.family("cheetah_dir")
    assert cfg.maml_iterations("maml_trpo_matched", "cheetah_dir") * budget.meta_batch == budget.reml_episodes
    assert cfg.maml_iterations("maml_trpo", "cheetah_dir") == budget.iterations
    assert cfg.ppo_timesteps("pretrained_matched", "cheetah_dir", 200) == budget.reml_episodes * 200
    assert cfg.ppo_timesteps("pretrained", "cheetah_dir", 200) == budget.ppo_timesteps
    assert len(cfg.replicates) >= 3 and cfg.runs(cfg.reml.agent) == cfg.runs("reml_random") == cfg.replicates
    assert cfg.runs("scratch") == (0,) and cfg.runs("maml_trpo_matched") == cfg.baseline_replicates
