import pytest

from reml.families.classification.glyphs import generate


@pytest.fixture(scope="module")
def glyph_splits():
    return generate(["GREEK", "ARMENIAN"], instances=12, size=28, dedupe=0.9, split=(0.6, 0.2, 0.2), seed=0)
