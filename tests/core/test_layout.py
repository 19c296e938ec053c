"""The package's import graph: nothing imports upward (core <- methods <- families <- stages), and no
family imports another (only ``reml.families.params``, which reads every family's sections, may)."""

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "reml"


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "reml" or n.startswith("reml.")}


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.name)
def test_core_imports_only_core(path):
    assert all(n.startswith("reml.core") for n in imported(path)), imported(path)


@pytest.mark.parametrize("path", modules("methods"), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_methods_import_no_family(path):
    assert all(n.startswith(("reml.core", "reml.methods")) for n in imported(path)), imported(path)


@pytest.mark.parametrize("family", ["sinusoid", "classification", "rl"])
def test_a_family_imports_no_other_family(family):
    for path in modules(f"families/{family}"):
        others = {
            n for n in imported(path) if n.startswith("reml.families.") and not n.startswith(f"reml.families.{family}")
        }
        assert not others, f"{path.relative_to(REPO)} imports {others}"


def test_every_family_has_the_same_module_names():
    shared = {"config", "tasks", "checkpoint", "baselines", "reml", "evaluate", "figures", "report"}
    for family in ("sinusoid", "classification", "rl"):
        names = {p.stem for p in (PACKAGE / "families" / family).glob("*.py")}
        assert shared <= names, (family, sorted(shared - names))
