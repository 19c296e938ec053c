"""The project's commands besides ``dvc``:

- ``python -m reml profile [NAME]``: show the current profile of params.yaml, or switch it to NAME
  (``make profile P=paper``); see :mod:`reml.core.profiles`;
- ``python -m reml results``: the report's headline tables in the terminal (``make results``);
- ``python -m reml verify [--against REV]``: which scores moved by more than their 95% CI against the
  committed ones (``make verify``); see :mod:`reml.summary`;
- ``python -m reml repro [-j N] [--cluster local|slurm|auto] [STAGE ...]``: ``dvc repro`` with
  independent stages N at a time (``make repro JOBS=N``); see :mod:`reml.fanout`.
"""

import argparse
import sys
from pathlib import Path

from ruamel.yaml import YAML

from reml import summary
from reml.core import stagetimes
from reml.core.config import PROFILES, ConfigError
from reml.core.io import ArtifactError, write_text
from reml.core.profiles import PROFILE_DIR, apply_profile
from reml.families import params


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["repro"]:  # its own parser (reml.fanout.main): the options are dvc repro's world
        from reml import fanout

        sys.exit(fanout.main(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m reml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    profile = commands.add_parser("profile", help="show or switch the profile of params.yaml")
    profile.add_argument("name", nargs="?", help=f"one of {', '.join(PROFILES)}; omit to show the current one")
    profile.add_argument("--params", type=Path, default=Path("params.yaml"))
    show = commands.add_parser("results", help="print the headline tables of the current profile's report")
    verify = commands.add_parser("verify", help="list the scores that moved by more than their 95%% CI")
    verify.add_argument("--against", default="HEAD", help="git revision holding the reference scores (default HEAD)")
    verify.add_argument("--rev", default=None, help="git revision to check instead of the workspace")
    commands.add_parser("repro", help="dvc repro, independent stages in parallel: python -m reml repro --help")
    for command in (show, verify):
        command.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    try:
        if args.command != "profile":
            reports_dir = params.load(args.params).pipeline.reports_dir
            if args.command == "results":
                print(summary.results(Path(reports_dir) / "report.md"))
                return
            verdict = summary.compare(summary.read_scores(reports_dir, args.against),
                                      summary.read_scores(reports_dir, args.rev))  # fmt: skip
            print(summary.describe(verdict, args.against, args.rev or "workspace"))
            sys.exit(1 if verdict.moved else 0)
        if args.name is None:
            current = YAML(typ="safe").load(args.params.read_text()).get("profile")
            print(f"{args.params}: profile {current} (available: {', '.join(PROFILES)})")
            return
        changed = apply_profile(args.name, args.params, PROFILE_DIR, validate=params.parse)
        # make_report reads the profile's stage times (reml.core.stagetimes): a new reports_dir gets an empty record
        times = args.params.parent / stagetimes.path_for(params.load(args.params).pipeline.reports_dir)
        if not times.is_file():
            write_text(times, stagetimes.render({}))
            print(f"{times}: no stage times recorded yet (make repro JOBS=N records them)")
    except (ConfigError, ArtifactError) as err:
        sys.exit(f"error: {err}")
    print(f"{args.params}: profile {args.name}; changed {len(changed)} value(s): {', '.join(changed) or 'none'}")
    print("see `dvc params diff`; run `make repro` (or `dvc repro`) to recompute")


if __name__ == "__main__":
    main()
