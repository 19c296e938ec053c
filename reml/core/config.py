"""Typed, validated configuration: one frozen dataclass per section of ``params.yaml``.

This module knows no family: it turns YAML mappings into frozen dataclasses (:func:`from_dict`,
rejecting unknown and missing keys), holds the checks every section uses, and reads the two keys
every stage shares (``profile``, ``reports_dir``). Each family declares its own sections in its
``config.py`` and parses them with :func:`check_params` and :func:`family_sections`. Errors are
:class:`ConfigError` whose message starts with the dotted key, e.g.
``train_pretrained.lr: must be > 0, got -0.1``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")

PROFILES = ("quick", "paper", "tiny")


class ConfigError(ValueError):
    """A value in params.yaml is missing, unknown, of the wrong type or out of range."""


# --------------------------------------------------------------------------- checks


def require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def check_range(key: str, value: tuple[float, float], low: float | None = None) -> None:
    lo, hi = value
    require(lo <= hi, key, f"min {lo} > max {hi}; give [min, max] with min <= max")
    if low is not None:
        require(lo >= low, key, f"min must be >= {low}, got {lo}")


def check_seed(key: str, seed: int) -> None:
    require(seed >= 0, key, f"must be a non-negative integer, got {seed}")


def check_positive(cfg: object, *names: str) -> None:
    """Every named field of ``cfg`` is an integer >= 1."""
    for name in names:
        value = getattr(cfg, name)
        require(value >= 1, name, f"must be >= 1, got {value}")


def check_rate(name: str, value: float) -> None:
    """A step size, learning rate or scale: finite and > 0."""
    require(value > 0 and math.isfinite(value), name, f"must be > 0, got {value}")


def check_choices(name: str, values: Sequence[Any], allowed: Sequence[Any]) -> None:
    """A non-empty list of distinct values, each one of ``allowed``."""
    require(len(values) >= 1, name, "needs at least one entry")
    unknown = [v for v in values if v not in allowed]
    require(not unknown, name, f"unknown {unknown}; allowed: {list(allowed)}")
    require(len(set(values)) == len(values), name, f"has duplicates: {list(values)}")


# --------------------------------------------------------------------------- keys that belong to no family


@dataclass(frozen=True)
class ComputeConfig:
    """``compute``: where the torch stages run (:mod:`reml.core.compute`, docs/compute.md)."""

    device: Literal["cpu", "cuda", "auto"]  # auto: cuda when torch sees a GPU, else cpu
    threads: int  # torch intra-op threads per stage; 1 keeps CPU results identical whatever the core count

    def __post_init__(self) -> None:
        ok = 1 <= self.threads <= 1024
        require(ok, "threads", f"must be an integer in [1, 1024], got {self.threads}")


# What a params file without a ``compute`` section ran on: every result made before the section existed.
CPU_ONLY = {"device": "cpu", "threads": 1}


@dataclass(frozen=True)
class PipelineConfig:
    """The top-level keys of params.yaml that belong to no family."""

    profile: Literal["quick", "paper", "tiny"]  # which profile these values came from (see profiles/)
    reports_dir: str  # where committed results go: reports/ for quick, reports/paper for paper
    compute: ComputeConfig  # absent (params of runs older than the section): CPU_ONLY

    def __post_init__(self) -> None:
        parts = Path(os.path.normpath(self.reports_dir)).parts if self.reports_dir else ()
        inside = bool(parts) and not Path(self.reports_dir).is_absolute() and parts[0] not in ("..", ".")
        require(
            inside,
            "reports_dir",
            f"must be a relative path inside the repository (e.g. reports), got {self.reports_dir!r}",
        )


def check_dpi(key: str, dpi: int) -> None:
    ok = isinstance(dpi, int) and not isinstance(dpi, bool) and 20 <= dpi <= 600
    require(ok, key, f"must be an integer in [20, 600], got {dpi!r}")


def figure_dpi(data: Mapping[str, Any]) -> int:
    """``make_figures.dpi`` of a params mapping: the resolution of every family's figures."""
    section = data.get("make_figures")
    require(isinstance(section, dict) and "dpi" in section, "make_figures.dpi", "missing (the figures' resolution)")
    check_dpi("make_figures.dpi", section["dpi"])
    return section["dpi"]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The parsed params file, with an error naming it if it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found (run from the repository root)")
    with path.open() as f:
        data = yaml.safe_load(f)
    require(isinstance(data, dict), str(path), f"expected a mapping of sections, got {data!r}")
    return data


def check_params(data: Mapping[str, Any], sections: Mapping[str, Sequence[str]]) -> PipelineConfig:
    """The shared top-level keys of a params mapping, validated, after checking that every other
    top-level key belongs to a family: ``sections`` maps each family to the keys it owns
    (:data:`reml.families.SECTIONS`), so a misspelt section is never silently ignored."""
    shared = [f.name for f in dataclasses.fields(PipelineConfig)]
    allowed = [*shared, *(key for keys in sections.values() for key in keys)]
    for name in data:
        require(name in allowed, name, f"unknown key; allowed keys: {', '.join(allowed)}")
    return from_dict(PipelineConfig, {"compute": CPU_ONLY, **{k: data[k] for k in shared if k in data}}, "")


def family_sections(cls: type[T], data: Mapping[str, Any]) -> T:
    """The dataclass ``cls`` whose fields are top-level sections, built from the whole params mapping."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return from_dict(cls, {k: data[k] for k in names if k in data}, "")


# --------------------------------------------------------------------------- parsing


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # X | None: null, or an X
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return None if value is None else _coerce(args[0], value, key)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        require(value in allowed, key, f"got {value!r}; allowed: {list(allowed)}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        require(isinstance(value, list | tuple), key, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        require(len(value) == len(args), key, f"expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is float:  # no field of params.yaml means anything with .inf or .nan
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        require(ok, key, f"expected a number, got {value!r}")
        require(math.isfinite(value), key, f"must be a finite number, got {value}")
        return float(value)
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        require(ok, key, f"expected an integer, got {value!r}")
        return value
    if tp is str:
        require(isinstance(value, str), key, f"expected a string, got {value!r}")
        return value
    if tp is bool:
        require(isinstance(value, bool), key, f"expected true or false, got {value!r}")
        return value
    if origin is dict:  # dict[str, X]: a mapping of named entries, each coerced to X
        require(isinstance(value, dict), key, f"expected a mapping, got {value!r}")
        _, item = typing.get_args(tp)
        return {name: _coerce(item, v, f"{key}.{name}") for name, v in value.items()}
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def from_dict(cls: type[T], data: Any, key: str) -> T:
    """Build the dataclass ``cls`` from a parsed YAML mapping, rejecting unknown or missing keys."""
    require(isinstance(data, dict), key, f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for name in data:
        require(name in names, f"{key}.{name}" if key else name, f"unknown key; allowed keys: {', '.join(names)}")
    for name in names:
        require(name in data, f"{key}.{name}" if key else name, "missing (every key must be given in params.yaml)")
    kwargs = {n: _coerce(hints[n], data[n], f"{key}.{n}" if key else n) for n in names}
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{key}.{err}" if key else str(err)) from None


def to_dict(config: Any) -> Any:
    """A plain, YAML/JSON-friendly copy of a config (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, tuple | list):
        return [to_dict(v) for v in config]
    return config
