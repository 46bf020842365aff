"""Fixtures of the planner serve tests: the Haidian sample loaded once, a fresh session and
API client per test, and the independent audits the edits are checked against."""

from __future__ import annotations

import warnings

import pytest

from planner.serve.engine import Engine
from planner.serve.session import Session
from planner.sources import load_region

from .helpers import ROOT, SAMPLE


@pytest.fixture(scope="session")
def haidian():
    return load_region(ROOT / SAMPLE)


@pytest.fixture(scope="session")
def engine(haidian):
    return Engine(haidian)


@pytest.fixture
def session(engine, tmp_path):
    engine.reset()
    return Session(engine, tmp_path / "scenarios", {"osm": SAMPLE})


@pytest.fixture
def client(session):
    from starlette.testclient import TestClient

    from planner.serve.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # starlette's note on httpx vs httpx2
        return TestClient(create_app(session), base_url="http://127.0.0.1")
