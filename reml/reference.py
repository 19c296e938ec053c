"""Published numbers we compare with (see shared/docs/protocol.md)."""

# Finn, Abbeel & Levine (2017), appendix Table 2: sinusoid regression, 5-shot query MSE after
# 1 / 5 / 10 gradient steps (MAML meta-trained with K = 10). No confidence intervals were published.
FINN_SINUSOID_K5: dict[str, dict[int, float]] = {
    "pretrained": {1: 2.41, 5: 2.23, 10: 2.19},
    "maml": {1: 0.67, 5: 0.38, 10: 0.35},
}
# The test-time step size each published row used: Finn's pretrained baseline had an "automatically
# tuned" one; MAML used its inner step size α = 0.01.
FINN_STEP_SIZES = {"pretrained": "tuned", "maml": "0.01"}
FINN_CITATION = "Finn et al. 2017, Table 2"

# Finn et al. 2017, Table 1: Omniglot test accuracy (%) of MAML with the conv net, 95% CI. Real Omniglot,
# not the glyph set this benchmark generates by default: shown beside our numbers, never compared as equal.
FINN_OMNIGLOT: dict[str, str] = {
    "5w1s": "98.7 ± 0.4",
    "5w5s": "99.9 ± 0.1",
    "20w1s": "95.8 ± 0.3",
    "20w5s": "98.9 ± 0.2",
}
FINN_OMNIGLOT_CITATION = "Finn et al. 2017, Table 1 (real Omniglot)"

# Finn et al. 2017, appendix Tables 4 and 5: average return of MAML after 0 / 1 / 2 / 3 policy-gradient
# steps (rllab, MuJoCo 1.31; 2D navigation with 40 rollouts per step at test, HalfCheetah direction with
# 20). Other families were published as curves only (protocol.md).
FINN_RL: dict[str, tuple[float, ...]] = {
    "navigation2d": (-40.41, -11.68, -3.33, -3.23),
    "cheetah_dir": (-50.69, 293.19, 313.48, 315.65),
}
FINN_RL_CITATION = "Finn et al. 2017, Tables 4-5"
