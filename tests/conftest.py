"""Shared test fixtures: where the real data are, and tiny hand-written OSM files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from planner import settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLES = ROOT / "sample_regions"

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/browser.py, tests/osm_fixtures.py


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"needs ../shared/{'/'.join(parts)} (the larger real data beside the repo); absent in this clone"
        )
    return path


@pytest.fixture(autouse=True)
def _quiet_settings():
    """No progress bars in tests, and settings restored after each test."""
    saved = {
        k: getattr(settings, k)
        for k in dir(settings)
        if not k.startswith("_") and not callable(getattr(settings, k))
    }
    settings.progress = False
    yield
    for k, v in saved.items():
        setattr(settings, k, v)
