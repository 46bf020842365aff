"""Sizes, capacities, spacing and catchments from the standards (planner.sizing), worked by hand."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner import settings
from planner.categories import load_categories
from planner.sizing import candidate_capacity, existing_capacity, fits, sizing_for

CATS = load_categories()


def test_kindergarten_sizing_from_the_standards_with_sources():
    s = sizing_for(CATS["kindergarten"])
    assert (s.floor_m2, s.floor_max_m2, s.land_m2) == (3150, 4550, 5240)
    assert s.residents_per_facility == 12000
    # Spacing: the 300 m service radius × settings.min_spacing_factor (1.0); catchment: a block.
    assert s.min_spacing_m == 300.0
    assert s.min_catchment_residents == 1000.0
    # GB 50180's area ranges come from its rule pack, "to confirm": never marked confirmed.
    assert s.sources["area"][1] is False
    assert "gb50180.5min.kindergarten.floor_area" in s.sources["area"][0] and "幼儿园" in s.sources["area"][0]
    assert s.sources["spacing"][1] is False and "assumption" in s.sources["spacing"][0]
    assert s.as_dict()["sources"]["capacity"]["confirmed"] is False


def test_areas_of_a_level_from_the_rule_pack():
    # The community service station (5-minute) and the street-level centre (15-minute).
    station = sizing_for(CATS["community_service"])
    centre = sizing_for(CATS["community_service"], level="15min")
    assert (station.floor_m2, station.floor_max_m2, station.land_m2) == (600, 1000, 500)
    assert (centre.floor_m2, centre.floor_max_m2, centre.land_m2) == (700, 1500, 600)
    # Two ranges (market or fresh supermarket): the smallest low, the largest high.
    market = sizing_for(CATS["market"])
    assert (market.floor_m2, market.floor_max_m2) == (750, 2500)
    # Not in the pack: the nursery's land from data/sizing.toml.
    assert sizing_for(CATS["childcare"]).land_m2 == 1200


def test_settings_change_spacing_and_catchment():
    settings.min_spacing_factor = 0.5
    settings.min_catchment_residents = {**settings.min_catchment_residents, "15min": 20000.0}
    assert sizing_for(CATS["kindergarten"]).min_spacing_m == 150.0
    hc = sizing_for(CATS["health_centre"])
    assert hc.min_spacing_m == 500.0 and hc.min_catchment_residents == 20000.0


def test_community_service_capacity_from_30_m2_per_100_households():
    s = sizing_for(CATS["community_service"])
    assert s.sources["capacity"][1] is True  # ≥ 30 m² per 100 households is confirmed
    cap = candidate_capacity(s, np.array([600.0, 1000.0, 2000.0, np.nan]))
    # 114.5 m² per 1,000 residents: 600 m² → 5,240 residents; above the range's 1,000 m² top the
    # standard size is used; unknown floor: the standard size.
    assert cap == pytest.approx(
        [600 / 114.5 * 1000, 1000 / 114.5 * 1000, 1000 / 114.5 * 1000, 1000 / 114.5 * 1000]
    )
    assert cap[0] == pytest.approx(5240.17, abs=0.01)


def test_elderly_and_childcare_capacity():
    eld = sizing_for(CATS["elderly_care"])
    assert candidate_capacity(eld, np.array([350.0]))[0] == pytest.approx(4584.75, abs=0.01)
    child = sizing_for(CATS["childcare"])
    # 4.5 places per 1,000 residents: 45 places serve 10,000 residents; no places: no limit.
    cap = candidate_capacity(child, np.array([np.nan, np.nan]), np.array([45.0, np.nan]))
    assert cap[0] == pytest.approx(10000.0) and np.isinf(cap[1])


def test_fits_at_below_and_above_the_smallest_standard_size():
    s = sizing_for(CATS["kindergarten"])  # land ≥ 5,240 m², floor ≥ 3,150 m²
    land = np.array([5240.0, 5239.0, np.nan, np.nan, 6000.0, np.nan])
    floor = np.array([np.nan, np.nan, np.nan, 3149.0, 3149.0, 3150.0])
    assert list(fits(s, land, floor)) == [True, False, True, False, True, True]


def test_existing_capacity_from_mapped_size():
    s = sizing_for(CATS["elderly_care"])
    square = shapely.box(0, 0, 20, 20)  # 400 m² footprint
    fac = gpd.GeoDataFrame(
        {
            "tags": [{"building": "yes", "building:levels": "2"}, {}, {"building": "yes"}],
            "floor_area_m2": [np.nan, 350.0, np.nan],
        },
        geometry=[square, shapely.Point(0, 0), square],
        crs="EPSG:32650",
    )
    cap = existing_capacity(s, fac)
    # 400 m² × 2 levels = 800 m² → 10,479 residents; 350 m² given → 4,585; levels unknown → no limit.
    assert cap[0] == pytest.approx(800 / 76.34 * 1000)
    assert cap[1] == pytest.approx(350 / 76.34 * 1000)
    assert np.isinf(cap[2])


def test_catchment_and_spacing_name_their_clauses():
    # The numbers are read in GB 50180-2018 table 3.0.4 (block and 10-minute rows confirmed, the
    # 5-minute row not); their use as a minimum catchment or spacing is no clause's.
    k = sizing_for(CATS["kindergarten"])
    assert k.sources["catchment"][1] is False and "assumption" in k.sources["catchment"][0]
    assert k.sources["catchment_clause"] == (
        "GB 50180-2018 table 3.0.4: 居住街坊 block 1,000–3,000 residents (its low end)",
        True,
    )
    assert "300 m" in k.sources["spacing_clause"][0]
    assert sizing_for(CATS["market"]).sources["catchment_clause"][1] is False  # 10-minute: the 5-minute row
    assert sizing_for(CATS["health_centre"]).sources["catchment_clause"][1] is True
    settings.min_catchment_residents = {**settings.min_catchment_residents, "5min": 300.0}
    assert "catchment_clause" not in sizing_for(CATS["kindergarten"]).sources  # no clause says 300
