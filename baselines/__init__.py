"""Methods compared with REML. Each one produces a :class:`reml.checkpoint.Checkpoint` for the harness."""
