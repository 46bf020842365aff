"""planner.demand: homes and people from buildings, grids and files, worked by hand.

Urban profile (settings, 7th census): population = footprint × levels / 36.52 m² per person;
households = population / 2.62; elderly 18.70 %, children 17.95 %, disabled 6.34 % of the
population. Buildings without ``building:levels`` take ``settings.default_levels``. Residential
land with no home on it gets a 100 m grid at 150 residents per hectare. The rural profile
is checked in test_villages (test_rural_profile_by_hand).
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from osm_fixtures import X0, Y0, square, write_osm

from planner import InputError, load_region, settings
from planner.demand import add_groups, grid_homes, grid_points, homes_from_file, homes_from_region

URBAN_M2_PER_PERSON = 36.52
PER_HOUSEHOLD = 2.62
REL = 2e-3  # OSM stores coordinates to 1e-7° (about 1 cm): footprints to about 0.1 %


@pytest.fixture
def town(tmp_path):
    """A street and, beside it, buildings and residential land (x, y in metres):

    - way 10: apartments 20 × 30 m, building:levels = 5            → 600 × 5 / 36.52
    - way 11: building=residential 10 × 20 m, no levels (default 6) → 200 × 6 / 36.52
    - way 12: a 5 × 5 m house: below 30 m², a shed, not a home
    - way 13: apartments 20 × 20 m with shop=supermarket: not a home
    - way 14: building=yes 20 × 20 m on residential land 16 (default 3 levels) → 400 × 3 / 36.52
    - way 15: building=yes 20 × 20 m on no residential land: not a home
    - way 16: residential land 100 × 100 m holding way 14: no grid
    - way 17: residential land 240 × 160 m with no building: a grid of 2 × 2 points
    """
    nodes = {1: (0, -10), 2: (1000, -10)}
    ways = [(1, [1, 2], {"highway": "residential"})]
    shapes = {
        10: ((0, 0, 20, 30), {"building": "apartments", "building:levels": "5"}),
        11: ((40, 0, 50, 20), {"building": "residential"}),
        12: ((60, 0, 65, 5), {"building": "house"}),
        13: ((80, 0, 100, 20), {"building": "apartments", "shop": "supermarket"}),
        14: ((240, 40, 260, 60), {"building": "yes"}),
        15: ((120, 0, 140, 20), {"building": "yes"}),
        16: ((200, 0, 300, 100), {"landuse": "residential"}),
        17: ((400, 0, 640, 160), {"landuse": "residential"}),
    }
    for wid, ((x0, y0, x1, y1), tags) in shapes.items():
        corner_nodes, ring = square(wid * 10, x0, y0, x1, y1)
        nodes.update(corner_nodes)
        ways.append((wid, ring, tags))
    return load_region(write_osm(tmp_path / "town.osm", nodes, ways))


def test_population_from_buildings_by_hand(town):
    homes = homes_from_region(town)
    assert homes.attrs["profile"] == "urban"
    buildings = homes[homes["source"] == "building"].set_index("home_id")
    assert sorted(buildings.index) == ["way/10", "way/11", "way/14"]
    expected = {
        "way/10": 600 * 5 / URBAN_M2_PER_PERSON,  # 82.1 people
        "way/11": 200 * 6 / URBAN_M2_PER_PERSON,  # 32.9
        "way/14": 400 * 3 / URBAN_M2_PER_PERSON,  # 32.9
    }
    for home_id, people in expected.items():
        row = buildings.loc[home_id]
        assert row["population"] == pytest.approx(people, rel=REL)
        assert row["households"] == pytest.approx(people / PER_HOUSEHOLD, rel=REL)
        assert row["elderly"] == pytest.approx(people * 0.1870, rel=REL)
        assert row["children"] == pytest.approx(people * 0.1795, rel=REL)
        assert row["disabled"] == pytest.approx(people * 0.0634, rel=REL)
        assert not row["estimated"]
    # A building's home stands inside its footprint.
    b10 = buildings.loc["way/10", "geometry"]
    assert X0 < b10.x < X0 + 20 and Y0 < b10.y < Y0 + 30


def test_grid_on_residential_land_without_homes(town):
    homes = homes_from_region(town)
    grid = homes[homes["source"] == "grid"]
    # Land 17 (240 m × 160 m = 3.84 ha): cell centres at x = 450, 550 and y = 50, 150 → 4
    # points, each a quarter of 3.84 ha × 150 people/ha. Land 16 holds building 14: no grid.
    assert len(grid) == 4 and grid["estimated"].all()
    assert grid["population"].to_numpy() == pytest.approx([3.84 * 150 / 4] * 4, rel=REL)
    xy = shapely.get_coordinates(grid.geometry.to_numpy()) - [X0, Y0]
    assert sorted(map(tuple, np.round(xy).tolist())) == [(450, 50), (450, 150), (550, 50), (550, 150)]
    assert homes["population"].sum() == pytest.approx(
        (3000 + 1200 + 1200) / URBAN_M2_PER_PERSON + 576.0, rel=REL
    )


def test_settings_change_the_formula(town):
    settings.floor_area_per_person_m2 = 50.0
    settings.grid_density_per_ha = 100.0
    settings.elderly_share = 0.25
    homes = homes_from_region(town).set_index("home_id")
    assert homes.loc["way/10", "population"] == pytest.approx(600 * 5 / 50, rel=REL)
    assert homes.loc["way/10", "elderly"] == pytest.approx(600 * 5 / 50 * 0.25, rel=REL)
    assert homes.loc[homes["source"] == "grid", "population"].sum() == pytest.approx(3.84 * 100, rel=REL)


def test_grid_points_and_grid_homes_by_hand():
    box = shapely.box(0, 0, 250, 150)
    x, y = grid_points(box, 100.0)
    assert sorted(zip(x.tolist(), y.tolist(), strict=True)) == [(50.0, 50.0), (150.0, 50.0)]
    # Smaller than a cell: one point inside it.
    tiny = shapely.box(0, 0, 30, 30)
    x, y = grid_points(tiny, 100.0)
    assert len(x) == 1 and tiny.contains(shapely.Point(x[0], y[0]))
    homes = grid_homes([box, tiny], crs="EPSG:32650", spacing_m=100.0, density_per_ha=200.0)
    assert homes["home_id"].tolist() == ["grid/0", "grid/1", "grid/2"]
    # 3.75 ha × 200 over 2 points; 0.09 ha × 200 on one.
    assert homes["population"].to_numpy() == pytest.approx([375.0, 375.0, 18.0])
    assert homes["estimated"].all() and homes.crs.to_epsg() == 32650


def test_homes_from_a_csv_file(tmp_path):
    path = tmp_path / "homes.csv"
    path.write_text(
        "home_id,lon,lat,households,elderly\nA,116.30,39.99,100,\nB,116.31,39.99,50,40\n",
        encoding="utf-8",
    )
    homes = homes_from_file(path, "EPSG:32650").set_index("home_id")
    # households only: population = households × 2.62; a blank elderly cell takes the share.
    assert homes.loc["A", "population"] == pytest.approx(262.0)
    assert homes.loc["A", "households"] == pytest.approx(100.0)
    assert homes.loc["A", "elderly"] == pytest.approx(262.0 * 0.1870)
    assert homes.loc["B", "elderly"] == pytest.approx(40.0)  # given: kept
    assert homes.loc["B", "children"] == pytest.approx(131.0 * 0.1795)
    assert not homes["estimated"].any() and (homes["source"] == "file").all()


def test_add_groups_fills_only_what_is_missing():
    import geopandas as gpd

    homes = gpd.GeoDataFrame(
        {"population": [100.0, 10.0], "children": [5.0, None]},
        geometry=gpd.points_from_xy([X0, X0 + 10], [Y0, Y0]),
        crs="EPSG:32650",
    )
    out = add_groups(homes, elderly_share=0.5)
    assert out["elderly"].tolist() == pytest.approx([50.0, 5.0])
    assert out["children"].tolist() == pytest.approx([5.0, 10.0 * 0.1795])
    assert out["households"].tolist() == pytest.approx([100 / 2.62, 10 / 2.62])
    assert out["home_id"].tolist() == ["home/0", "home/1"]
    with pytest.raises(InputError, match=r"elderly share 1\.5: must be between 0 and 1"):
        add_groups(homes, elderly_share=1.5)


# ----------------------------------------------------------------------------------------------
# compounds: the share of an outline along walls, measured per compound


def _share_against_all_walls(outline, walls, tol):
    """The reference: every outline intersected with the union of all the walls."""
    rings = np.where(shapely.area(walls) > 0, shapely.boundary(walls), walls)
    union = shapely.union_all(shapely.buffer(rings, tol))
    return shapely.length(shapely.intersection(outline, union)) / np.maximum(shapely.length(outline), 1e-9)


def test_share_along_walls_by_hand():
    from planner.demand import share_along_walls

    outline = shapely.boundary(np.array([shapely.box(0, 0, 100, 100), shapely.box(500, 0, 600, 100)]))
    # Walls along the first square's south and west sides (200 of 400 m), one 2 m off the
    # line; a wall area whose ring runs along the second square's north side (100 of 400 m).
    walls = np.array(
        [
            shapely.LineString([(0, 0), (100, 0)]),
            shapely.LineString([(-2, 0), (-2, 100)]),
            shapely.box(500, 100, 600, 130),
        ]
    )
    share = share_along_walls(outline, walls, tol=5.0)
    # Within 5 m: 200 m of sides, plus 5 m of the east side (the south wall's end) and 3 m of
    # the north side (the west wall's end, 2 m off) = 208 / 400; the ring's ends add 5 m of
    # each of the second square's east and west sides: 110 / 400.
    np.testing.assert_allclose(share, [0.52, 0.275], rtol=1e-9)
    np.testing.assert_allclose(share, _share_against_all_walls(outline, walls, 5.0), rtol=1e-12)


def test_share_along_walls_equals_the_union_of_all_walls():
    from planner.demand import share_along_walls

    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 2000, (60, 2))
    outline = shapely.boundary(
        shapely.box(corners[:, 0], corners[:, 1], corners[:, 0] + 150, corners[:, 1] + 120)
    )
    start = rng.uniform(0, 2100, (300, 2))
    walls = shapely.linestrings(np.stack([start, start + rng.normal(0, 80, (300, 2))], axis=1))
    share = share_along_walls(outline, walls, tol=settings.gate_tolerance_m)
    assert (share > 0).sum() > 10
    np.testing.assert_allclose(
        share, _share_against_all_walls(outline, walls, settings.gate_tolerance_m), atol=1e-9
    )


@pytest.mark.parametrize("name", ["beijing_haidian_cau", "beijing_haidian_wudaokou", "shenzhen_longgang"])
def test_compound_walls_on_samples_equal_the_union_of_all_walls(name):
    from planner.demand import compounds, residential_land, share_along_walls
    from planner.network import WALL_BARRIERS

    region = load_region(name)
    feats = region.features
    outline = shapely.boundary(residential_land(feats).geometry.to_numpy())
    walls = feats[
        feats["tags"].map(lambda t: t.get("barrier") in WALL_BARRIERS).to_numpy()
    ].geometry.to_numpy()
    tol = settings.gate_tolerance_m
    np.testing.assert_allclose(
        share_along_walls(outline, walls, tol), _share_against_all_walls(outline, walls, tol), atol=1e-9
    )
    if name == "beijing_haidian_cau":  # one walled compound with its gates
        found = compounds(region)
        assert len(found) == 1 and bool(found["walled"].iloc[0])


def test_compounds_are_found_once_per_region_and_anew_for_changed_features():
    import dataclasses

    from planner import load_region
    from planner.demand import compounds

    region = load_region("beijing_haidian_cau")
    first = compounds(region)
    assert len(first) and compounds(region) is first  # the homes and the settlement evidence share it
    fewer = dataclasses.replace(
        region, features=region.features[~region.features["osm_id"].isin(first["compound_id"])]
    )
    assert len(compounds(fewer)) == 0
