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
