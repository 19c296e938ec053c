"""Meta-RL (Finn et al. 2017, Sec. 5.3): 2D navigation and MuJoCo locomotion.

The machinery mirrors pytorch-maml-rl: the Gaussian MLP policy (``policy``), the batched rollout
sampler (``sampler``), policy-gradient adaptation with a linear feature baseline (``pg``), TRPO's
natural-gradient step (``trpo``) and MAML-TRPO (``maml_trpo``); the families are in ``tasks``,
``navigation`` and ``locomotion``, and :func:`rl_family` finds one by name.
"""

from reml.families.rl.config import RL_FAMILIES
from reml.families.rl.tasks import RLFamily


def rl_family(name: str, frame_skip: int | None = None) -> RLFamily:
    """The family called ``name``, stepping ``frame_skip`` simulator steps per action (``None``: the
    environment's default); MuJoCo is imported only when a locomotion family is asked for."""
    from reml.families.rl import locomotion, navigation  # MuJoCo only when asked for

    families = {f.name: f for f in (navigation.NAVIGATION2D, locomotion.CHEETAH_VEL, locomotion.CHEETAH_DIR,
                                    locomotion.ANT_VEL, locomotion.ANT_DIR)}  # fmt: skip
    assert tuple(families) == RL_FAMILIES
    if name not in families:
        raise ValueError(f"unknown RL family {name!r}; allowed: {sorted(families)}")
    return families[name].with_frame_skip(frame_skip)
