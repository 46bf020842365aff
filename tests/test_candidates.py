"""Candidate land and parcels (planner.candidates): real samples counted, files read, the
street fallback labelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLES
from osm_fixtures import write_osm

from planner._errors import InputError
from planner.candidates import STREET_FALLBACK, land_candidates, parcels_from_file, sized_candidates
from planner.categories import load_categories
from planner.network import build_network
from planner.sizing import sizing_for
from planner.sources import load_region

CATS = load_categories()


@pytest.fixture(scope="module")
def cau():
    return load_region(str(SAMPLES / "beijing_haidian_cau.osm.pbf"))


def test_land_candidates_of_haidian(cau):
    cand = land_candidates(cau)
    assert cand["source"].value_counts().to_dict() == {"building": 29, "vacant_land": 9, "facility_site": 1}
    assert (cand["land_m2"] > 0).all()
    # Buildings have a floor area (footprint × levels, 1 where unmapped); land has none.
    assert cand.loc[cand["source"] == "building", "floor_m2"].notna().all()
    assert cand.loc[cand["source"] == "vacant_land", "floor_m2"].isna().all()
    assert (cand.geometry.geom_type == "Point").all()


def test_only_land_big_enough_for_a_kindergarten(cau):
    kept, info = sized_candidates(land_candidates(cau), sizing_for(CATS["kindergarten"]))
    assert info == {"given": 39, "too_small": 31, "kept": 8, "street_fallback": False}
    assert (kept["land_m2"] >= 5240).all()
    assert (kept["capacity"] == 12000).all()


def test_parcels_from_file(tmp_path):
    path = tmp_path / "parcels.csv"
    pd.DataFrame(
        {
            "lon": [116.35, 116.351],
            "lat": [40.0, 40.001],
            "candidate_id": ["A", "B"],
            "max_floor_area_m2": [700, ""],
            "land_area_m2": ["", 900],
        }
    ).to_csv(path, index=False)
    out = parcels_from_file(path, "EPSG:32650")
    assert list(out["candidate_id"]) == ["A", "B"]
    assert out["floor_m2"].tolist()[0] == 700 and np.isnan(out["floor_m2"].tolist()[1])
    assert np.isnan(out["land_m2"].tolist()[0]) and out["land_m2"].tolist()[1] == 900
    kept, info = sized_candidates(out, sizing_for(CATS["community_service"]))  # floor ≥ 600 or land ≥ 500
    assert info["kept"] == 2
    assert kept["capacity"].tolist()[0] == pytest.approx(700 / 114.5 * 1000)


def test_a_bad_parcel_value_names_its_row_and_column(tmp_path):
    path = tmp_path / "parcels.csv"
    pd.DataFrame({"lon": [116.35, 116.351], "lat": [40.0, 40.001], "max_floor_area_m2": [700, -5]}).to_csv(
        path, index=False
    )
    with pytest.raises(InputError, match=r"row 2: max_floor_area_m2"):
        parcels_from_file(path, "EPSG:32650")


def test_street_points_only_as_a_labelled_fallback(tmp_path):
    nodes = {i + 1: (i * 100.0, 0.0) for i in range(6)}
    region = load_region(
        write_osm(tmp_path / "line.osm", nodes, [(1, list(range(1, 7)), {"highway": "residential"})])
    )
    net = build_network(region)
    cand = land_candidates(region)
    assert len(cand) == 0  # no land mapped
    kept, info = sized_candidates(cand, sizing_for(CATS["kindergarten"]), net)
    assert info["street_fallback"] is True
    assert set(kept["source"]) == {STREET_FALLBACK}
    assert len(kept) == 4  # one per occupied 150 m cell of a 500 m street
    # Without a network (a user's parcels), no fallback: nothing fits.
    kept, info = sized_candidates(cand, sizing_for(CATS["kindergarten"]))
    assert len(kept) == 0 and info["street_fallback"] is False
