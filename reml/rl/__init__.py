"""Meta-RL machinery shared by every method: the Gaussian MLP policy, the batched rollout sampler,
policy-gradient adaptation with a linear feature baseline, and TRPO's natural-gradient step.

Task families are in :mod:`reml.tasks.rl`; MAML-TRPO is in :mod:`baselines.maml_trpo`.
"""
