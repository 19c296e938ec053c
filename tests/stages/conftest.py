import pytest

from tests.helpers import BIN, profile_repo, run_in


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A fresh copy after a serial `dvc repro` of the whole tiny profile, and what that run printed.

    Run once and shared: the end-to-end test checks its outputs, the parallel test compares its own run
    with it. A test may change the copy only if it puts it back as it was."""
    repo = profile_repo(tmp_path_factory.mktemp("tiny") / "repo")
    first = run_in([str(BIN / "dvc"), "repro"], repo)
    assert first.returncode == 0, first.stdout + first.stderr
    return repo, first.stdout
