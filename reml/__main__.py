"""``python -m reml profile [NAME]``: show the current profile of params.yaml, or switch it to NAME
(``make profile P=paper``); see :mod:`reml.core.profiles`."""

import argparse
import sys
from pathlib import Path

from ruamel.yaml import YAML

from reml.core.config import PROFILES, ConfigError
from reml.core.profiles import PROFILE_DIR, apply_profile
from reml.families import params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    profile = commands.add_parser("profile", help="show or switch the profile of params.yaml")
    profile.add_argument("name", nargs="?", help=f"one of {', '.join(PROFILES)}; omit to show the current one")
    profile.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    try:
        if args.name is None:
            current = YAML(typ="safe").load(args.params.read_text()).get("profile")
            print(f"{args.params}: profile {current} (available: {', '.join(PROFILES)})")
            return
        changed = apply_profile(args.name, args.params, PROFILE_DIR, validate=params.parse)
    except ConfigError as err:
        sys.exit(f"error: {err}")
    print(f"{args.params}: profile {args.name}; changed {len(changed)} value(s): {', '.join(changed) or 'none'}")
    print("see `dvc params diff`; run `make repro` (or `dvc repro`) to recompute")


if __name__ == "__main__":
    main()
