"""Propose sites by the standards on a sample where they propose (Nanjing Xinjiekou): the
proposal, accepted as an edit, gives the numbers of a full audit with that facility added."""

from __future__ import annotations

import warnings

import geopandas as gpd
import pytest
import shapely

from planner.audit import run_audit
from planner.serve.engine import Engine
from planner.serve.session import Session
from planner.sources import load_region

from .helpers import ROOT, assert_same_numbers, population_share

NANJING = "sample_regions/nanjing_xinjiekou.osm.pbf"


@pytest.fixture(scope="module")
def nanjing_engine():
    return Engine(load_region(ROOT / NANJING))


@pytest.fixture
def nanjing(nanjing_engine, tmp_path):
    from starlette.testclient import TestClient

    from planner.serve.app import create_app

    nanjing_engine.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return TestClient(
            create_app(Session(nanjing_engine, tmp_path / "s", {"osm": NANJING})), base_url="http://127.0.0.1"
        )


def test_standards_proposal_accepted_equals_an_audit_with_it(nanjing, nanjing_engine, tmp_path):
    engine = nanjing_engine
    before = population_share(engine.coverage, "elderly_care")
    out = nanjing.post("/api/propose", json={"category": "elderly_care", "new": 1})
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["standards"] is True and "why" not in body
    (prop,) = body["proposals"]
    assert prop["population_newly_covered"] > 0
    assert any(line.startswith("#1 ") for line in body["lines"])  # the siting's own line for the site
    accepted = nanjing.post("/api/edits", json=prop["edit"])
    assert accepted.status_code == 200, accepted.text
    path = tmp_path / "extra.geojson"
    gpd.GeoDataFrame(
        {"facility_id": ["scenario/1"], "category": ["elderly_care"], "name": ["proposed 1"]},
        geometry=[shapely.Point(prop["edit"]["lon"], prop["edit"]["lat"])],
        crs=4326,
    ).to_file(path)
    result = run_audit(ROOT / NANJING, tmp_path / "out", facilities=path, isochrones="none", map_html=False)
    assert_same_numbers(engine, result)
    assert population_share(engine.coverage, "elderly_care") > before
