"""The life-circle audit on real OSM extracts and hand-made cases."""

from __future__ import annotations

import json

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import SAMPLES, shared_path
from osm_fixtures import square, write_osm

from planner import access, audit, settings
from planner.categories import load_categories
from planner.cli import main
from planner.network import Access, build_network, from_arrays, point_access, to_networkx, trip_costs
from planner.sources import load_region

CAU = str(SAMPLES / "beijing_haidian_cau.osm.pbf")
NANJING = str(SAMPLES / "nanjing_xinjiekou.osm.pbf")


# ----------------------------------------------------------------------------------------------
# travel times against an independent networkx Dijkstra


def _networkx_times(result, key: str, sample: np.ndarray) -> np.ndarray:
    """Home → nearest facility of a category, by networkx Dijkstra from each sampled home."""
    net = result.network
    g = to_networkx(net, "time")
    fac = result.facilities
    idx = np.nonzero(fac["category"].to_numpy() == key)[0]
    comps = __import__("planner.demand", fromlist=["compounds"]).compounds(result._region)
    # Facilities in a gated compound are entered at its gates, others as geometry_access does.
    acc, fac_comp = access.facility_access(net, fac.iloc[idx], comps)
    fac_leg = acc.leg(net, "time")
    home_acc, info = access.home_access(net, result.homes, comps)
    home_comp = info["_home_compound_index"]
    h_leg = home_acc.leg(net, "time")
    out = []
    for h in sample:
        best = np.inf
        for node, leg in zip(home_acc.node[home_acc.owner == h], h_leg[home_acc.owner == h], strict=False):
            dist = nx.single_source_dijkstra_path_length(g, int(node), weight="weight")
            for fnode, fleg in zip(acc.node, fac_leg, strict=False):
                if int(fnode) in dist:
                    best = min(best, leg + dist[int(fnode)] + fleg)
        # A facility of the home's own compound: the straight walk inside it.
        if home_comp[h] >= 0:
            for f in np.nonzero(fac_comp == home_comp[h])[0]:
                walk = result.homes.geometry.iloc[h].distance(fac.geometry.iloc[idx[f]])
                best = min(best, walk * settings.off_network_detour / net.walk_speed_mps)
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("source", [CAU, NANJING, "helsinki"])
def test_times_equal_networkx_dijkstra(source):
    region = load_region(source)
    result = audit.audit(region, categories="supermarket,bus_stop,park", with_isochrones=False)
    result._region = region
    rng = np.random.default_rng(7)
    sample = rng.choice(len(result.homes), size=min(12, len(result.homes)), replace=False)
    for key in ("supermarket", "bus_stop", "park"):
        if (result.facilities["category"] == key).sum() == 0:
            continue
        expected = _networkx_times(result, key, sample)
        got = result.homes[f"{key}_time_s"].to_numpy()[sample]
        got = np.where(np.isnan(got), np.inf, got)
        finite = np.isfinite(expected)
        assert finite.any()
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-6)
        assert np.array_equal(np.isfinite(got), finite)


def test_shanghai_roads_network_matches_networkx():
    path = shared_path("regions", "shanghai_center_roads.osm")
    region = load_region(path)
    net = build_network(region, "drive")
    rng = np.random.default_rng(3)
    targets = rng.choice(net.n_nodes, 20, replace=False)
    acc = Access(owner=np.arange(20), node=targets, leg_m=np.zeros(20), n_owners=20)
    from planner.network import sweep

    cost, which = sweep(net, acc, "time")
    g = to_networkx(net, "time").reverse(copy=True)
    dist = nx.multi_source_dijkstra_path_length(g, {int(t) for t in targets}, weight="weight")
    nodes = np.array(list(dist))
    np.testing.assert_allclose(cost[nodes], np.array([dist[n] for n in nodes]), rtol=1e-9)
    assert np.isinf(np.delete(cost, nodes)).all()
    # The reported facility really is one at that cost.
    some = rng.choice(nodes, 30)
    for n in some:
        d = nx.single_source_dijkstra_path_length(to_networkx(net, "time"), int(n), weight="weight")
        assert d[int(targets[which[n]])] == pytest.approx(cost[n], rel=1e-9)


# ----------------------------------------------------------------------------------------------
# coverage by hand


def test_coverage_shares_by_hand():
    # A line of 5 nodes 100 m apart; a facility at node 0; homes exactly at nodes 0..4.
    x = np.arange(5) * 100.0
    net = from_arrays(x, np.zeros(5), np.arange(4), np.arange(1, 5), "EPSG:32650", walk_speed_mps=1.0)
    fac = Access(owner=np.array([0]), node=np.array([0]), leg_m=np.zeros(1), n_owners=1)
    from planner.network import sweep

    cost, which = sweep(net, fac, "time")
    np.testing.assert_allclose(cost, [0, 100, 200, 300, 400])
    homes_acc = point_access(net, np.column_stack([x, np.zeros(5)]))
    t, _f = trip_costs(net, homes_acc, cost, which)
    homes = pd.DataFrame(
        {
            "population": [10, 20, 30, 40, 100.0],
            "elderly": [1, 1, 1, 1, 6.0],
            "children": [0, 5, 0, 0, 5.0],
            "disabled": [0, 0, 0, 0, 1.0],
            "x_time_s": t,
            "x_dist_m": t * 1.0,
        }
    )
    cat = load_categories()["kindergarten"]
    cat = type(cat)(**{**cat.__dict__, "key": "x"})
    # Thresholds of 2.5 and 5 minutes (150 s, 300 s); elderly 1.5× slower.
    cov = audit.coverage_table(homes, [cat], [2.5, 5], elderly_time_factor=1.5)
    # 150 s: homes at 0, 100 s → 2 of 5; people 30/200; children 5/10.
    # Elderly times 0, 150, 300 ... → within 150 s: homes 0 and 1 → 2/10.
    r = cov.iloc[0]
    assert r["homes_share"] == pytest.approx(2 / 5)
    assert r["population_share"] == pytest.approx(30 / 200)
    assert r["children_share"] == pytest.approx(5 / 10)
    assert r["elderly_share"] == pytest.approx(2 / 10)
    # 300 s: homes 0..3 → 4/5; people 100/200; elderly times ≤ 300: 0,150,300 → 3/10.
    r = cov.iloc[1]
    assert r["homes_share"] == pytest.approx(4 / 5)
    assert r["population_share"] == pytest.approx(100 / 200)
    assert r["elderly_share"] == pytest.approx(3 / 10)
    assert r["disabled_share"] == 0.0
    assert r["population_outside"] == pytest.approx(100.0)
    # At the kindergarten's own target, 300 m along the network: the home at 300 m is in,
    # the one at 400 m out, and the elderly are in where everyone is (a distance, not a time).
    r = cov.iloc[2]
    assert (r["threshold"], r["target_m"], r["target_unit"]) == ("target", 300.0, "m")
    assert np.isnan(r["minutes"]) and np.isnan(r["target_minutes"])
    assert r["homes_share"] == pytest.approx(4 / 5)
    assert r["elderly_share"] == pytest.approx(4 / 10)


# ----------------------------------------------------------------------------------------------
# gated compounds


def _compound_osm(tmp_path, with_gate: bool = True):
    nodes = {
        1: (0, 0),
        2: (100, 0),
        3: (200, 0),
        4: (300, 0),  # south street
        5: (300, 300),
        6: (150, 300),
        7: (0, 300),  # east and north streets
        8: (150, 250),  # gate on the north wall
        20: (100, -10),  # kindergarten just south of the south street
    }
    wall_nodes, wall_ring = square(30, 50, 20, 250, 250)
    home_nodes, home_ring = square(40, 140, 50, 160, 70)
    nodes.update(wall_nodes)
    nodes.update(home_nodes)
    ways = [
        (100, [1, 2, 3, 4], {"highway": "residential"}),
        (101, [4, 5], {"highway": "residential"}),
        (102, [5, 6, 7], {"highway": "residential"}),
        (103, [8, 6], {"highway": "footway"}),
        (110, wall_ring, {"landuse": "residential", "barrier": "wall", "name": "测试小区"}),
        (120, home_ring, {"building": "apartments", "building:levels": "6"}),
    ]
    node_tags = {20: {"amenity": "kindergarten", "name": "幼儿园"}}
    if with_gate:
        node_tags[8] = {"barrier": "gate"}
    return write_osm(tmp_path / "compound.osm", nodes, ways, node_tags)


def test_gated_compound_trip_leaves_through_far_gate(tmp_path):
    region = load_region(_compound_osm(tmp_path))
    result = audit.audit(region, categories="kindergarten", with_isochrones=False)
    assert len(result.homes) == 1
    detour = settings.off_network_detour
    # home (150, 60) → gate (150, 250): 190 m straight; gate → north street 50, east 150,
    # down 300, west 100 + 100 to node 2; kindergarten 10 m off node 2.
    expected = (190 * detour + 50 + 150 + 300 + 100 + 100 + 10 * detour) / settings.walk_speed_mps
    # OSM stores coordinates to 1e-7 degrees (about 1 cm): compare to 1e-4.
    assert result.homes["kindergarten_time_s"].iloc[0] == pytest.approx(expected, rel=1e-4)
    assert result.compounds["homes_routed_through_gates"] == 1
    # Through the wall it would be under a quarter of that.
    straight = (np.hypot(50, 60) * detour + 10 * detour) / settings.walk_speed_mps
    assert result.homes["kindergarten_time_s"].iloc[0] > 4 * straight


def test_compound_without_gate_falls_back_and_says_so(tmp_path):
    region = load_region(_compound_osm(tmp_path, with_gate=False))
    result = audit.audit(region, categories="kindergarten", with_isochrones=False)
    fell_back = result.summary()["compounds"]["without_gates_fell_back_to_nearest_street"]
    assert [c["name"] for c in fell_back] == ["测试小区"]
    # Nearest street node (100, 0) or (200, 0): 78.1 m away.
    assert result.homes["kindergarten_time_s"].iloc[0] < 250


# ----------------------------------------------------------------------------------------------
# CLI outputs on a real extract


def test_cli_audit_writes_outputs(tmp_path):
    out = tmp_path / "audit"
    rc = main(["audit", "--osm", CAU, "--categories", "kindergarten,market,clinic", "--out", str(out)])
    assert rc == 0
    homes = gpd.read_file(out / "homes.gpkg", layer="homes")
    assert homes.crs.to_epsg() == 4326
    for col in ("home_id", "population", "kindergarten_time_s", "kindergarten_facility_id", "market_time_s"):
        assert col in homes.columns
    ids = homes["kindergarten_facility_id"].dropna()
    assert len(ids) and ids.str.match(r"^(node|way|relation)/\d+$").all()
    cov = pd.read_csv(out / "coverage.csv")
    assert list(cov.columns[:1]) == ["category"]
    for col in ("minutes", "homes_pct", "population_pct", "elderly_pct", "children_pct", "population_within"):
        assert col in cov.columns
    for col in ("threshold", "target_m", "target_minutes", "target_unit", "target_source", "confirmed"):
        assert col in cov.columns
    rows = cov[cov["threshold"] == "minutes"]
    assert set(rows["minutes"]) == {5, 10, 15}
    # Coverage grows with the threshold; elderly (slower) never beat the average.
    for _, grp in rows.groupby("category"):
        assert grp["population_pct"].is_monotonic_increasing
    assert (rows["elderly_pct"] <= rows["population_pct"]).all()
    # Each category at its own target, in its source's unit: a GB 50180 radius in metres.
    target = cov[cov["threshold"] == "target"].set_index("category")
    assert target.loc["kindergarten", "target_m"] == 300 and target.loc["market", "target_m"] == 500
    assert target.loc["kindergarten", "target_source"].startswith("GB 50180-2018")
    # kindergarten, market and clinic are basic: the 5-minute circle holds kindergarten and
    # clinic, and no clinic is mapped, so no home has a complete circle.
    complete = cov[cov["category"] == "complete_life_circle"].set_index("level")
    assert list(complete.index) == ["5min", "10min", "15min"]
    assert (complete["homes_pct"] == 0).all() and (complete["population_within"] == 0).all()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["region"] == "beijing_haidian_cau"
    assert summary["crs"] == "EPSG:32650"
    assert summary["walk_speed_mps"] == settings.walk_speed_mps
    assert summary["homes"] == len(homes)
    # No clinic is mapped there: a finding, not an error.
    assert summary["facilities"]["clinic"] == 0
    assert "clinic" in summary["categories_without_facilities"]
    assert summary["categories"]["kindergarten"]["target_m"] == 300
    circle = summary["complete_life_circle"]["10min"]
    assert circle["categories"] == {"kindergarten": "≤ 300 m", "clinic": "≤ 300 m", "market": "≤ 500 m"}
    assert "bus_stop" in circle["basic_categories_not_audited"]
    assert circle["basic_categories_without_facilities"] == ["clinic"]
    assert circle["population_share"] == 0
    assert homes["clinic_time_s"].isna().all()
    assert (cov.loc[cov["category"] == "clinic", "population_pct"] == 0).all()
    html = (out / "map.html").read_text(encoding="utf-8")
    assert "Kindergarten" in html and "cdn.jsdelivr" not in html


def test_cli_global_options_after_the_subcommand(tmp_path, capsys):
    """``-q`` and ``--config`` work after the subcommand too (click reads them only before)."""
    cfg = tmp_path / "planner.toml"
    cfg.write_text("walk_speed_mps = 1.25\n", encoding="utf-8")
    settings.progress = True
    assert main(["categories", "-q", "--config", str(cfg)]) == 0
    assert settings.progress is False and settings.walk_speed_mps == 1.25
    assert "kindergarten" in capsys.readouterr().out
    assert main(["categories", f"--config={tmp_path / 'missing.toml'}"]) == 2
    assert "missing.toml: file not found" in capsys.readouterr().err


@pytest.mark.browser
def test_demo_map_draws_offline_in_chromium(tmp_path):
    import browser

    if not browser.chromium_available():
        pytest.skip(browser.SKIP_REASON)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    seen = browser.open_in_browser(out / "map.html", screenshot_path=tmp_path / "demo.png")
    assert seen["errors"] == []
    assert seen["external"] == []
    n_homes = json.loads((out / "summary.json").read_text(encoding="utf-8"))["homes"]
    assert seen["paths"] > n_homes  # every home of the first layer, plus facilities, isochrones, roads
    assert "幼儿园 Kindergarten" in seen["layer_names"]
    assert len(seen["layer_names"]) == 1 + len(load_categories())  # roads + one per category


def test_helsinki_sample_and_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--region", "helsinki"]) == 0
    summary = json.loads((tmp_path / "planner-out" / "demo" / "summary.json").read_text(encoding="utf-8"))
    assert summary["region"] == "Helsinki"
    assert summary["homes"] > 0
    assert sum(summary["facilities"].values()) > 50


def test_user_homes_and_facilities_files(tmp_path):
    homes = gpd.GeoDataFrame(
        {"households": [100, 250]},
        geometry=gpd.points_from_xy([116.350, 116.352], [40.003, 40.004]),
        crs=4326,
    )
    homes.to_file(tmp_path / "homes.gpkg")
    fac = pd.DataFrame(
        {"category": ["clinic"], "name": ["社区卫生服务站"], "lon": [116.3505], "lat": [40.0032]}
    )
    fac.to_csv(tmp_path / "fac.csv", index=False)
    out = tmp_path / "o"
    rc = main(
        [
            "audit",
            "--osm",
            CAU,
            "--homes",
            str(tmp_path / "homes.gpkg"),
            "--facilities",
            str(tmp_path / "fac.csv"),
            "--categories",
            "clinic",
            "--out",
            str(out),
            "--no-map",
        ]
    )
    assert rc == 0
    got = gpd.read_file(out / "homes.gpkg", layer="homes")
    assert got["population"].tolist() == pytest.approx(
        [100 * settings.persons_per_household, 250 * settings.persons_per_household]
    )
    assert (got["clinic_facility_id"] == "file/0").all()
    assert got["clinic_time_s"].notna().all()


# ----------------------------------------------------------------------------------------------
# bad input: one line, exit 2, nothing written


def _run_bad(tmp_path, capsys, *args):
    out = tmp_path / "out"
    rc = main(["audit", *args, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: ") and "\n" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]
    return err


def test_missing_file(tmp_path, capsys):
    err = _run_bad(tmp_path, capsys, "--osm", str(tmp_path / "nope.osm"))
    assert "nope.osm" in err and "not found" in err


def test_truncated_xml(tmp_path, capsys):
    text = shared_path("regions", "beijing_haidian_cau.osm").read_bytes()
    bad = tmp_path / "cut.osm"
    bad.write_bytes(text[: len(text) // 2])
    err = _run_bad(tmp_path, capsys, "--osm", str(bad))
    assert "cut.osm" in err and "not a readable OSM file" in err


def test_truncated_pbf(tmp_path, capsys):
    data = (SAMPLES / "beijing_haidian_cau.osm.pbf").read_bytes()
    bad = tmp_path / "cut.osm.pbf"
    bad.write_bytes(data[: len(data) // 2])
    err = _run_bad(tmp_path, capsys, "--osm", str(bad))
    assert "cut.osm.pbf" in err


@pytest.mark.parametrize(
    ("content", "name"),
    [
        ("hello, not osm\n", "notes.osm"),
        ('{"type": "FeatureCollection"}', "x.osm.pbf"),
        ("<html><body>404</body></html>", "page.osm"),
    ],
)
def test_not_osm(tmp_path, capsys, content, name):
    bad = tmp_path / name
    bad.write_text(content)
    err = _run_bad(tmp_path, capsys, "--osm", str(bad))
    assert name in err


def test_no_walkable_roads(tmp_path, capsys):
    path = write_osm(
        tmp_path / "motorway.osm", {1: (0, 0), 2: (500, 0)}, [(1, [1, 2], {"highway": "motorway"})]
    )
    err = _run_bad(tmp_path, capsys, "--osm", str(path))
    assert "no roads usable for walk" in err


def test_no_homes(tmp_path, capsys):
    path = write_osm(
        tmp_path / "empty.osm", {1: (0, 0), 2: (500, 0)}, [(1, [1, 2], {"highway": "residential"})]
    )
    err = _run_bad(tmp_path, capsys, "--osm", str(path))
    assert "no homes" in err and "--homes" in err


def test_unknown_category(tmp_path, capsys):
    err = _run_bad(tmp_path, capsys, "--osm", CAU, "--categories", "kindergarden")
    assert "kindergarden" in err and "kindergarten" in err


def test_previous_outputs_survive_a_failed_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["audit", "--osm", CAU, "--categories", "park", "--out", str(out), "--no-map"]) == 0
    before = (out / "summary.json").read_text(encoding="utf-8")
    assert main(["audit", "--osm", CAU, "--categories", "nope", "--out", str(out)]) == 2
    assert (out / "summary.json").read_text(encoding="utf-8") == before


def test_clipped_extract_loads(tmp_path):
    # A way that references nodes missing from the file (as in every real extract's edge).
    nodes = {1: (0, 0), 2: (100, 0), 3: (200, 0)}
    path = write_osm(tmp_path / "clipped.osm", nodes, [(1, [1, 2, 3, 99, 98], {"highway": "residential"})])
    region = load_region(path)
    assert len(region.seg_u) == 2  # 1-2 and 2-3; segments to the missing nodes are dropped
    net = build_network(region)
    assert net.n_nodes == 3


# ----------------------------------------------------------------------------------------------
# modes


def test_drive_respects_oneway_and_bike_speeds(tmp_path):
    nodes = {1: (0, 0), 2: (1000, 0), 3: (1000, 1000), 4: (0, 1000)}
    ways = [
        (1, [1, 2], {"highway": "primary", "oneway": "yes", "maxspeed": "60"}),
        (2, [2, 3, 4, 1], {"highway": "residential"}),
    ]
    region = load_region(write_osm(tmp_path / "oneway.osm", nodes, ways))

    def approx(v):  # OSM coordinates are stored to about 1 cm
        return pytest.approx(v, rel=1e-4)

    drive = build_network(region, "drive")
    g = to_networkx(drive)
    i1, i2 = (int(np.nonzero(drive.node_id == k)[0][0]) for k in (1, 2))
    assert nx.shortest_path_length(g, i1, i2, weight="weight") == approx(1000 / (60 / 3.6))
    # Against the one-way: around the block on residential streets (25 km/h default).
    assert nx.shortest_path_length(g, i2, i1, weight="weight") == approx(3000 / (25 / 3.6))
    bike = build_network(region, "bike")
    gb = to_networkx(bike)
    assert nx.shortest_path_length(gb, i1, i2, weight="weight") == approx(
        1000 / (settings.bike_speed_kph["primary"] / 3.6)
    )
    walk = build_network(region, "walk")
    gw = to_networkx(walk)
    assert nx.shortest_path_length(gw, i2, i1, weight="weight") == approx(1000 / settings.walk_speed_mps)


def test_isochrones_follow_streets():
    region = load_region(CAU)
    result = audit.audit(region, categories="kindergarten", with_isochrones="all")
    # The kindergarten's own target, 300 m along the network, first; then each threshold.
    target, iso = result.isochrones.iloc[:1], result.isochrones.iloc[1:]
    assert target["target_m"].iloc[0] == 300
    assert target["minutes"].iloc[0] == pytest.approx(300 / settings.walk_speed_mps / 60)
    assert list(iso["minutes"]) == [5, 10, 15]
    areas = np.r_[target.geometry.area.to_numpy(), iso.geometry.area.to_numpy()]
    assert (np.diff(areas) > 0).all()
    # Every home within 5 minutes lies near the 5-minute polygon (it snaps to a reached street),
    # and every home within 300 m near the target's.
    for poly, inside in (
        (iso.geometry.iloc[0], result.homes[result.homes["kindergarten_time_s"] <= 300]),
        (target.geometry.iloc[0], result.homes[result.homes["kindergarten_dist_m"] <= 300]),
    ):
        assert len(inside)
        d = shapely.distance(poly, inside.geometry.to_numpy())
        assert (d <= inside["snap_m"].to_numpy() + 1.0).all()


# ----------------------------------------------------------------------------------------------
# boundaries, estimated homes, user categories


def test_boundary_clips_streets_and_features(tmp_path):
    region = load_region(CAU)
    minx, miny, maxx, maxy = region.bounds_wgs84
    half = shapely.box(minx, miny, (minx + maxx) / 2, maxy)
    clipped = load_region(CAU, boundary=half)
    assert 0 < len(clipped.seg_u) < len(region.seg_u)
    xy = gpd.GeoSeries(gpd.points_from_xy(clipped.node_x, clipped.node_y), crs=clipped.crs).to_crs(4326)
    assert (xy.x <= (minx + maxx) / 2 + 1e-9).all()
    assert clipped.features.intersects(gpd.GeoSeries([half], crs=4326).to_crs(clipped.crs).iloc[0]).all()


def test_grid_homes_where_buildings_are_missing(tmp_path):
    # Residential land with no buildings: a 300 m × 200 m block → 3 × 2 grid points at 100 m.
    nodes = {1: (0, -10), 2: (400, -10)}
    land_nodes, land_ring = square(10, 0, 0, 300, 200)
    nodes.update(land_nodes)
    ways = [(1, [1, 2], {"highway": "residential"}), (2, land_ring, {"landuse": "residential"})]
    region = load_region(write_osm(tmp_path / "grid.osm", nodes, ways))
    result = audit.audit(region, categories="park", with_isochrones=False)
    homes = result.homes
    assert len(homes) == 6 and homes["estimated"].all()
    assert homes["population"].sum() == pytest.approx(
        6.0 * settings.grid_density_per_ha, rel=1e-4
    )  # 6 ha (to OSM cm precision)
    assert result.summary()["homes_estimated"] == 6
    assert result.homes["park_time_s"].isna().all()


def test_user_categories_file(tmp_path):
    extra = tmp_path / "cats.toml"
    extra.write_text(
        '[[category]]\nkey = "bank"\nname_zh = "银行"\nname_en = "Bank"\nminutes = 15\n'
        'match = [{ amenity = "bank" }]\n',
        encoding="utf-8",
    )
    out = tmp_path / "o"
    assert (
        main(
            [
                "audit",
                "--osm",
                NANJING,
                "--categories-file",
                str(extra),
                "--categories",
                "bank",
                "--out",
                str(out),
                "--no-map",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["categories"]["bank"]["name_zh"] == "银行"
    assert summary["facilities"]["bank"] > 0


def test_boundary_counts_inside_homes_but_keeps_facilities_across_it(tmp_path):
    # A street from x=0 to 2000 m; homes at x=300 and x=1500; a kindergarten at x=1100.
    nodes = {i: (i * 100.0, 0.0) for i in range(21)}
    nodes[50] = (1100, -10)
    h1, r1 = square(60, 290, 10, 310, 30)
    h2, r2 = square(70, 1490, 10, 1510, 30)
    nodes.update(h1)
    nodes.update(h2)
    ways = [
        (1, list(range(21)), {"highway": "residential"}),
        (2, r1, {"building": "house"}),
        (3, r2, {"building": "house"}),
    ]
    osm = write_osm(tmp_path / "line.osm", nodes, ways, {50: {"amenity": "kindergarten"}})
    from osm_fixtures import UTM, X0, Y0

    boundary = gpd.GeoDataFrame(geometry=[shapely.box(X0 - 50, Y0 - 100, X0 + 1000, Y0 + 100)], crs=UTM)
    boundary.to_file(tmp_path / "boundary.gpkg")
    out = tmp_path / "o"
    assert (
        main(
            [
                "audit",
                "--osm",
                str(osm),
                "--boundary",
                str(tmp_path / "boundary.gpkg"),
                "--categories",
                "kindergarten",
                "--out",
                str(out),
                "--no-map",
            ]
        )
        == 0
    )
    homes = gpd.read_file(out / "homes.gpkg", layer="homes")
    assert homes["home_id"].tolist() == ["way/2"]  # the home beyond the boundary is not counted
    # home (300, 20) → node (300, 0): 20 m; along the street to 1100: 800 m; 10 m to the facility.
    expected = (
        20 * settings.off_network_detour + 800 + 10 * settings.off_network_detour
    ) / settings.walk_speed_mps
    assert homes["kindergarten_time_s"].iloc[0] == pytest.approx(expected, rel=1e-4)


def test_place_name_goes_through_osmnx(monkeypatch):
    """Offline stand-in for osmnx's download: the adapter turns its graph and features into
    a Region the audit can use."""
    import osmnx as ox
    from osm_fixtures import UTM, X0, Y0
    from pyproj import Transformer

    to_wgs = Transformer.from_crs(UTM, 4326, always_xy=True)
    g = nx.MultiDiGraph(crs="EPSG:4326")
    pts = {1: (0, 0), 2: (300, 0), 3: (600, 0)}
    for n, (x, y) in pts.items():
        lon, lat = to_wgs.transform(X0 + x, Y0 + y)
        g.add_node(n, x=lon, y=lat)
    for a, b in ((1, 2), (2, 3)):
        for u, v in ((a, b), (b, a)):
            g.add_edge(u, v, osmid=10 + a, highway="residential", oneway=False, length=300.0)
    lon, lat = to_wgs.transform(X0 + 600, Y0 + 10)
    hx, hy = to_wgs.transform(
        np.array([X0 - 10, X0 + 10, X0 + 10, X0 - 10]), np.array([Y0 + 10, Y0 + 10, Y0 + 30, Y0 + 30])
    )
    feats = gpd.GeoDataFrame(
        {
            "element": ["node", "way"],
            "id": [50, 60],
            "amenity": ["kindergarten", None],
            "building": [None, "house"],
            "name": ["幼儿园", None],
        },
        geometry=[shapely.Point(lon, lat), shapely.Polygon(np.column_stack([hx, hy]))],
        crs=4326,
    ).set_index(["element", "id"])
    monkeypatch.setattr(
        ox, "geocode_to_gdf", lambda q: gpd.GeoDataFrame(geometry=[shapely.box(116, 39, 117, 41)], crs=4326)
    )
    monkeypatch.setattr(ox, "graph_from_polygon", lambda *a, **k: g)
    monkeypatch.setattr(ox, "features_from_polygon", lambda *a, **k: feats)
    region = load_region("测试区, 北京市")
    assert region.name == "测试区, 北京市"
    result = audit.audit(region, categories="kindergarten", with_isochrones=False)
    # Home (0, 20) → node 1: 20 m; 600 m of street; 10 m to the kindergarten.
    expected = (
        20 * settings.off_network_detour + 600 + 10 * settings.off_network_detour
    ) / settings.walk_speed_mps
    assert result.homes["kindergarten_time_s"].iloc[0] == pytest.approx(expected, rel=1e-4)
    assert result.homes["kindergarten_facility_id"].iloc[0] == "node/50"


def test_cost_matrix_equals_networkx_and_keeps_zero_costs():
    region = load_region(NANJING)
    from planner.network import build_network, cost_matrix

    net = build_network(region)
    rng = np.random.default_rng(5)
    o_nodes = rng.choice(net.n_nodes, 40, replace=False)
    t_nodes = np.r_[o_nodes[:3], rng.choice(net.n_nodes, 7, replace=False)]  # 3 shared nodes: cost 0
    o_xy, t_xy = net.xy()[o_nodes], net.xy()[t_nodes]
    cutoff = 600.0
    mat = cost_matrix(net, o_xy, t_xy, cutoff)
    g = to_networkx(net, "time")
    dense = np.full((40, 10), np.inf)
    for i, n in enumerate(o_nodes):
        d = nx.single_source_dijkstra_path_length(g, int(n), cutoff=cutoff, weight="weight")
        for j, m in enumerate(t_nodes):
            dense[i, j] = d.get(int(m), np.inf)
    coo = mat.tocoo()
    got = np.full((40, 10), np.inf)
    got[coo.row, coo.col] = coo.data
    np.testing.assert_allclose(got[np.isfinite(dense)], dense[np.isfinite(dense)], rtol=1e-9, atol=1e-9)
    assert np.array_equal(np.isfinite(got), np.isfinite(dense))
    assert got[0, 0] == 0.0 and got[1, 1] == 0.0 and got[2, 2] == 0.0


# ----------------------------------------------------------------------------------------------
# facilities inside the home's own compound


def _compound_with_kindergarten_inside(tmp_path):
    """The walled compound of _compound_osm (one gate, on its north wall), with a home 3 m
    from a kindergarten inside it, and a home outside, north of the north street."""
    nodes = {
        1: (0, 0),
        2: (100, 0),
        3: (200, 0),
        4: (300, 0),
        5: (300, 300),
        6: (150, 300),
        7: (0, 300),
        8: (150, 250),  # gate on the north wall
        21: (150, 55),  # kindergarten inside the compound
    }
    wall_nodes, wall_ring = square(30, 50, 20, 250, 250)
    inside_nodes, inside_ring = square(40, 140, 50, 160, 54)  # home point (150, 52)
    outside_nodes, outside_ring = square(50, 240, 310, 260, 330)  # home point (250, 320)
    for part in (wall_nodes, inside_nodes, outside_nodes):
        nodes.update(part)
    ways = [
        (100, [1, 2, 3, 4], {"highway": "residential"}),
        (101, [4, 5], {"highway": "residential"}),
        (102, [5, 6, 7], {"highway": "residential"}),
        (103, [8, 6], {"highway": "footway"}),
        (110, wall_ring, {"landuse": "residential", "barrier": "wall", "name": "测试小区"}),
        (120, inside_ring, {"building": "apartments", "building:levels": "6"}),
        (121, outside_ring, {"building": "apartments", "building:levels": "6"}),
    ]
    tags = {8: {"barrier": "gate"}, 21: {"amenity": "kindergarten", "name": "小区幼儿园"}}
    return write_osm(tmp_path / "inside.osm", nodes, ways, tags)


def test_facility_inside_the_home_compound_is_reached_inside_it(tmp_path):
    region = load_region(_compound_with_kindergarten_inside(tmp_path))
    result = audit.audit(region, categories="kindergarten", with_isochrones=False)
    homes = result.homes.set_index("home_id")
    detour, speed = settings.off_network_detour, settings.walk_speed_mps
    # Inside: 3 m straight, walked with the detour factor, no gate.
    inside = homes.loc["way/120"]
    assert inside["kindergarten_time_s"] == pytest.approx(3 * detour / speed, abs=0.02)
    assert inside["kindergarten_time_s"] < 30
    assert inside["kindergarten_dist_m"] == pytest.approx(3 * detour, abs=0.02)
    assert inside["kindergarten_facility_id"] == "node/21"
    # Outside: home (250, 320) → node (300, 300) 53.85 m; east street west 150 m to (150, 300);
    # footway 50 m to the gate (150, 250); gate → kindergarten 195 m inside. Not across the
    # wall to the south street's node (100, 0), 74 m from the kindergarten (that way: 594 s).
    expected = (np.hypot(50, 20) * detour + 150 + 50 + 195 * detour) / speed
    assert homes.loc["way/121", "kindergarten_time_s"] == pytest.approx(expected, rel=1e-4)
    assert result.compounds["facility_trips_inside_compounds"] == 1


def test_haidian_home_reaches_its_compound_kindergarten_inside():
    """CAU sample: the home 3 m from the kindergarten of its walled compound (341 s through a
    gate before) walks there inside the compound; homes outside enter by the gates."""
    region = load_region(CAU)
    result = audit.audit(region, categories="kindergarten", with_isochrones=False)
    home = result.homes.set_index("home_id").loc["way/167303957"]
    assert home["compound_id"] == "way/609225889"
    assert home["kindergarten_facility_id"] == "node/1785669301"
    fac = result.facilities[result.facilities["facility_id"] == "node/1785669301"]
    straight = shapely.distance(
        result.homes.geometry[result.homes["home_id"] == "way/167303957"].iloc[0], fac.geometry.iloc[0]
    )
    assert straight == pytest.approx(3.18, abs=0.01)
    assert home["kindergarten_time_s"] == pytest.approx(
        straight * settings.off_network_detour / settings.walk_speed_mps, rel=1e-9
    )
    assert home["kindergarten_time_s"] < 30
    # From outside, the kindergarten is entered at the compound's gates only.
    from planner.demand import compounds

    comps = compounds(region)
    acc, fac_comp = access.facility_access(result.network, fac, comps)
    gates = comps.set_index("compound_id").loc["way/609225889", "gate_xy"]
    gate_nodes, _ = access.snap(result.network, gates)
    assert fac_comp[0] >= 0
    assert sorted(acc.node.tolist()) == sorted(gate_nodes.tolist())


def test_a_parts_isochrones_are_the_overlay_with_its_zone(monkeypatch):
    # A group's isochrones (discs around scattered facilities, unioned, with a hole) cut to a
    # region's zone (a box with rounded corners): the same area as the plain overlay, also
    # where the box cut is not valid (then the overlay takes the whole geometry).
    rng = np.random.default_rng(7)
    centres = shapely.points(rng.uniform(0, 3000, (40, 2)))
    isochrone = shapely.union_all(shapely.buffer(centres, rng.uniform(100, 400, 40)))
    isochrone = isochrone.difference(shapely.box(1400, 1400, 1600, 1600))
    geoms = np.array([isochrone, shapely.box(5000, 5000, 5100, 5100), None], object)
    zone = shapely.box(800, 900, 2100, 2000).buffer(250)
    expected = shapely.intersection(geoms, zone)
    got = audit._clipped(geoms, zone)
    assert shapely.is_valid(got[:2]).all() and got[2] is None and got[1].is_empty
    assert got[0].area == pytest.approx(expected[0].area, rel=1e-9)
    assert shapely.symmetric_difference(got[0], expected[0]).area < 1e-6 * expected[0].area
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    monkeypatch.setattr(shapely, "clip_by_rect", lambda g, *box: np.full(len(g), bowtie, object))
    fell_back = audit._clipped(geoms, zone)
    assert fell_back[0].equals(expected[0]) and fell_back[1].is_empty
