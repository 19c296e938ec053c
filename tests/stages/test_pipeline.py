"""The DVC pipeline: one script per stage, named after it, and declared dependencies are complete.
The whole pipeline on the tiny profile: tests/stages/test_tiny_profile.py."""

import os
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO

PACKAGES = ("reml",)
IMPORTED_MODULES = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("stage_under_test", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
for module in list(sys.modules.values()):
    print(getattr(module, "__file__", None) or "")
"""


def stages():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_imported_package_module_is_a_declared_dependency(name):
    """A stage whose code changes must rerun: every reml module it imports is in its deps. Its script is
    named after it."""
    stage = stages()[name]
    script = stage["cmd"].split()[1]  # "python stages/<script>.py ..."
    assert script == f"stages/{name}.py", f"stage {name} runs {script}"
    assert script in stage["deps"], f"{name}: {script} is not a dependency"
    files = subprocess.run(
        [sys.executable, "-c", IMPORTED_MODULES, str(REPO / script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    imported = {os.path.relpath(f, REPO) for f in files if f.startswith(str(REPO))}
    imported = {f for f in imported if f.split(os.sep)[0] in PACKAGES and not f.endswith("__init__.py")}
    deps = [d for d in stage["deps"] if isinstance(d, str)]
    missing = [f for f in sorted(imported) if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)]
    assert not missing, f"stage {name} imports {missing} but dvc.yaml does not list them in its deps"


@pytest.mark.parametrize("name", sorted(stages()))
def test_a_stage_declares_compute_exactly_when_it_reads_it(name):
    """Stages on the device (``stage.main`` without ``on_device=False``) rerun when ``compute`` changes;
    task generation and figures, which always run on the CPU, do not."""
    stage = stages()[name]
    source = (REPO / stage["cmd"].split()[1]).read_text()
    reads = "on_device=False" not in source or name == "make_report"  # it records the section, on the CPU
    declared = "compute" in [p for p in stage.get("params", []) if isinstance(p, str)]
    assert declared == reads, f"{name}: reads compute {reads}, declares it {declared}"
