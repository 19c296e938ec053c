"""reml-bench: the shared package (tasks, functional networks, the adaptation harness, I/O)."""
