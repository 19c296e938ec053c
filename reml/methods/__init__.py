"""Algorithms that serve more than one family: MAML, FOMAML and Reptile (``maml``, ``reptile``,
``meta_learners``), REML's composition machinery (``reml/``), and their settings (``config``)."""
