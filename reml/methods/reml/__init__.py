"""REML's machinery shared by every family: the layer pool (``pool``), the composition MDP skeleton
(``env``), and the agents that compose (``agents``). Each family's REML is one module of hooks,
``reml/families/<family>/reml.py``."""
