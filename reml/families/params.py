"""The whole of params.yaml: every family's sections, for the stages and tools that read them all
(``make_report``, profile switching)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reml.core.config import PipelineConfig, check_params, read_yaml
from reml.families import SECTIONS
from reml.families.classification import config as classification
from reml.families.rl import config as rl
from reml.families.sinusoid import config as sinusoid


@dataclass(frozen=True)
class AllParams:
    pipeline: PipelineConfig
    sinusoid: sinusoid.SinusoidConfig
    classification: classification.ClassificationConfig
    rl: rl.RLConfig


def parse(data: dict[str, Any]) -> AllParams:
    """Validate every family's sections of a params mapping (errors name the key)."""
    return AllParams(check_params(data, SECTIONS), sinusoid.parse(data), classification.parse(data), rl.parse(data))


def load(path: str | Path) -> AllParams:
    return parse(read_yaml(path))
