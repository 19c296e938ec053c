"""Meta-RL (Finn et al. 2017, Sec. 5.3): 2D navigation and MuJoCo locomotion.

The machinery mirrors pytorch-maml-rl: the Gaussian MLP policy (``policy``), the batched rollout
sampler (``sampler``), policy-gradient adaptation with a linear feature baseline (``pg``), TRPO's
natural-gradient step (``trpo``) and MAML-TRPO (``maml_trpo``); the families are in ``tasks``,
``navigation`` and ``locomotion``.
"""
