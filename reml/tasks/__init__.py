"""Task families. Every family samples a :class:`TaskSet` from a generator (see ``base``)."""

from reml.tasks.base import TaskSet, load_taskset, save_taskset
from reml.tasks.sinusoid import SinusoidDistribution

__all__ = ["SinusoidDistribution", "TaskSet", "load_taskset", "save_taskset"]
