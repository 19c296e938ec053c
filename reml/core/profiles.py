"""Switch ``params.yaml`` between profiles (``make profile P=paper``, i.e. ``python -m reml profile paper``).

A profile is an overlay in ``profiles/<name>.yaml`` naming only the values that differ between
profiles. ``profiles/quick.yaml`` names every key any profile changes, so switching back to quick
restores the default file exactly. The file is edited in place with comments kept, so
``dvc params diff`` shows precisely what a switch changed.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reml.core.config import PROFILES, ConfigError
from reml.core.io import write_text

PROFILE_DIR = Path("profiles")


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: keeps comments, order and flow-style lists
    yaml.width = 120
    # null as `null` (ruamel's default writes nothing), as params.yaml spells it
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys and values of the non-mapping leaves of ``tree``."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from leaves(value, dotted + ".")
        else:
            yield dotted, value


def load_overlay(name: str, profile_dir: Path = PROFILE_DIR) -> dict[str, Any]:
    if name not in PROFILES:
        raise ConfigError(f"profile: unknown profile {name!r}; allowed: {list(PROFILES)}")
    path = profile_dir / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"profile: {path} not found")
    with path.open() as f:
        return dict(_yaml().load(f) or {})


def apply_profile(
    name: str, params_path: Path, profile_dir: Path = PROFILE_DIR, validate: Callable[[dict], object] | None = None
) -> list[str]:
    """Rewrite ``params_path`` with the values of profile ``name``; return the keys that changed.

    ``validate`` gets the new params as a plain mapping and raises :class:`ConfigError` if they are
    invalid, in which case the file is left as it was."""
    overlay = load_overlay(name, profile_dir)
    yaml = _yaml()
    with params_path.open() as f:
        doc: CommentedMap = yaml.load(f)
    changed = []
    for dotted, value in leaves(overlay):
        *parents, last = dotted.split(".")
        node = doc
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"{profile_dir / name}.yaml: {dotted}: no such key in {params_path}")
            node = node[part]
        if last not in node:
            raise ConfigError(f"{profile_dir / name}.yaml: {dotted}: no such key in {params_path}")
        old = node[last]
        if isinstance(value, list):
            seq = CommentedSeq(value)
            if isinstance(old, CommentedSeq) and old.fa.flow_style():
                seq.fa.set_flow_style()
            value = seq
        if old != value:
            changed.append(dotted)
            node[last] = value
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    if validate is not None:
        validate(YAML(typ="safe").load(buffer.getvalue()))  # never write an invalid file
    write_text(params_path, buffer.getvalue())
    return changed
