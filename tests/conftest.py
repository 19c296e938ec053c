import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.fixture
def params_copy(tmp_path: Path) -> Path:
    """A writable copy of params.yaml."""
    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    return path


def pytest_collection_modifyitems(items):
    """The tiny-profile run first: with `--dist loadfile --no-loadscope-reorder` (make test) its file,
    the longest by far, gets a worker from the start while the other workers share the rest."""
    items.sort(key=lambda item: item.path.name != "test_tiny_profile.py")  # stable: the rest keep their order
