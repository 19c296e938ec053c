"""``make results`` and ``make verify``: the headline tables in a terminal, and a reproduction check.

``results`` prints, for every family, the tables its report section opens with (the report is the
single place the tables are made, so the terminal shows exactly what ``report.md`` says).

``verify`` compares two sets of full scores (``<reports_dir>/scores/*.json``): by default the
workspace's (after ``make repro``) against the committed ones (``git HEAD``). Every score with a 95% CI
is compared; a score that moved by more than its stated uncertainty (the larger of the two CIs, or
the across-seed spread where a method has one) is listed, so a peer can tell a different CPU's
rounding from a real disagreement. The exit status is 1 if anything moved that far.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reml.core.io import ArtifactError

SCORE_FILES = ("sinusoid", "sinusoid_unrelated", "classification", "rl")
LEAF = re.compile(r"^(?!ci95_|spread_)(\w+)_step(\d+)$")


# --------------------------------------------------------------------------- results


def headline_tables(report: str) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """``[(family section title, [(sub-heading, table lines), ...]), ...]``: the tables each ``## `` section
    opens with, up to its second ``### `` sub-section, or its first once a table was seen (the results
    come before sanity checks, figures and comparisons). Sections without such tables are left out."""
    sections: list[tuple[str, list[tuple[str, list[str]]]]] = []
    for block in re.split(r"^## ", report, flags=re.MULTILINE)[1:]:
        title, *lines = block.splitlines()
        tables: list[tuple[str, list[str]]] = []
        heading, subsections, previous = "", 0, ""
        for line in lines:
            if line.startswith("### "):
                subsections += 1
                if tables or subsections > 1:
                    break
                heading = line[4:].strip()
            elif line.startswith("#### "):
                heading = line[5:].strip()
            elif line.startswith("|"):
                if not previous.startswith("|"):
                    tables.append((heading, []))
                tables[-1][1].append(line)
            previous = line
        if tables:
            sections.append((title.strip(), tables))
    return sections


def render_table(lines: list[str]) -> str:
    """A markdown table as aligned plain text (the ``|---|`` rule becomes dashes)."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    rows = [r for r in rows if not all(set(c) <= set("-:") for c in r)]
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def results(report_path: Path) -> str:
    if not report_path.is_file():
        raise ArtifactError(f"{report_path}: not found; it is written by `make_report` (run `make repro`)")
    parts = [f"{report_path} (tables as in the report; full tables, CIs' meaning and budgets there)"]
    for title, tables in headline_tables(report_path.read_text()):
        parts.append(f"\n== {title}")
        for heading, lines in tables:
            parts.append(f"\n{heading}\n{render_table(lines)}" if heading else f"\n{render_table(lines)}")
    return "\n".join(parts)


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Score:
    key: str  # e.g. sinusoid/maml/k5/mse_step10
    value: float | None
    uncertainty: float | None  # the 95% CI (or across-seed spread, if larger)


def scores(data: Any, prefix: str) -> Iterator[Score]:
    """Every ``<name>_step<S>`` leaf with a sibling ``ci95_step<S>``, at any depth of ``data``."""
    if not isinstance(data, Mapping):
        return
    for key, value in data.items():
        match = LEAF.match(str(key))
        if match and f"ci95_step{match[2]}" in data:
            ci, spread = data[f"ci95_step{match[2]}"], data.get(f"spread_step{match[2]}")
            bounds = [u for u in (ci, spread) if isinstance(u, int | float) and math.isfinite(u)]
            yield Score(f"{prefix}/{key}", _finite(value), max(bounds) if bounds else None)
        elif isinstance(value, Mapping):
            yield from scores(value, f"{prefix}/{key}")


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def read_scores(reports_dir: str, rev: str | None) -> dict[str, Score]:
    """All scores of a revision (``None``: the workspace). Revisions before the scores/ folder existed
    kept the same files under metrics/."""
    found: dict[str, Score] = {}
    for name in SCORE_FILES:
        for folder in ("scores", "metrics"):
            path = f"{reports_dir}/{folder}/{name}.json"
            text = _read(path, rev)
            if text is not None:
                data = json.loads(text)
                data.pop("in_distribution", None)  # sinusoid_unrelated repeats the sinusoid scores
                found |= {s.key: s for s in scores(data, name)}
                break
    if not found:
        where = f"revision {rev}" if rev else "the workspace"
        raise ArtifactError(
            f"{reports_dir}/scores/: no scores in {where}; run `make repro` (or give another --against)"
        )
    return found


def _read(path: str, rev: str | None) -> str | None:
    if rev is None:
        return Path(path).read_text() if Path(path).is_file() else None
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


@dataclass(frozen=True)
class Verdict:
    identical: int
    within: int
    moved: list[tuple[Score, Score]]  # (reference, here), moved by more than the uncertainty
    missing: list[str]  # in one set only

    @property
    def compared(self) -> int:
        return self.identical + self.within + len(self.moved)


def compare(reference: dict[str, Score], here: dict[str, Score]) -> Verdict:
    identical = within = 0
    moved = []
    for key in sorted(reference.keys() & here.keys()):
        a, b = reference[key], here[key]
        if a.value == b.value:
            identical += 1
            continue
        bounds = [u for u in (a.uncertainty, b.uncertainty) if u is not None]
        if a.value is not None and b.value is not None and bounds and abs(a.value - b.value) <= max(bounds):
            within += 1
        else:
            moved.append((a, b))
    return Verdict(identical, within, moved, sorted(reference.keys() ^ here.keys()))


def describe(verdict: Verdict, reference: str, here: str) -> str:
    def fmt(v: float | None) -> str:
        return "diverged" if v is None else f"{v:.4g}"

    lines = [
        f"{verdict.compared} scores compared ({here} against {reference}): {verdict.identical} identical, "
        f"{verdict.within} moved within their 95% CI, {len(verdict.moved)} moved by more"
    ]
    for family in SCORE_FILES:
        moved = sum(a.key.split("/")[0] == family for a, _ in verdict.moved)
        if moved:
            lines.append(f"  {family}: {moved} moved by more than their 95% CI")
    if verdict.moved:
        width = max(len(a.key) for a, _ in verdict.moved)
        lines.append(f"{'score':{width}}  {reference:>10}  {here:>10}  {'change':>10}  {'95% CI':>8}")
        for a, b in verdict.moved:
            change = "" if a.value is None or b.value is None else f"{b.value - a.value:+.4g}"
            ci = max((u for u in (a.uncertainty, b.uncertainty) if u is not None), default=None)
            lines.append(f"{a.key:{width}}  {fmt(a.value):>10}  {fmt(b.value):>10}  {change:>10}  {fmt(ci):>8}")
    if verdict.missing:
        lines.append(f"{len(verdict.missing)} scores in only one of the two (another profile or method list): "
                     + ", ".join(verdict.missing[:5]) + (" ..." if len(verdict.missing) > 5 else ""))  # fmt: skip
    return "\n".join(lines)
