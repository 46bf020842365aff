"""planner serve's API: every edit kind gives exactly the numbers of an independent full audit
of the edited scenario (Beijing Haidian sample); bad input is refused in one line and changes
nothing; scenarios save, load, compare and export."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from planner import settings
from planner.audit import run_audit
from planner.network import build_network
from planner.serve.engine import with_gates

from .helpers import (
    ROOT,
    SAMPLE,
    assert_same_numbers,
    full_audit,
    lonlat,
    metric_xy,
    population_share,
    times,
    without,
)


def _point_near_street(engine, node: int, dx: float = 60.0, dy: float = 40.0) -> tuple[float, float]:
    return lonlat(engine, engine.net.x[node] + dx, engine.net.y[node] + dy)


def _single_facility(engine, category: str) -> str:
    """The OSM facility of the category nearest to most homes (its OSM feature being that
    facility only)."""
    fac = engine.current_facilities()
    counts = fac["facility_id"].value_counts()
    single = set(fac.loc[fac["facility_id"].map(counts).eq(1), "facility_id"])
    used = engine.homes[f"{category}_facility_id"].dropna()
    return str(used[used.isin(single)].value_counts().index[0])


def test_loaded_state_is_the_audit(client, engine, haidian):
    state = client.get("/api/state").json()
    assert len(state["homes"]["lon"]) == len(engine.homes) == 107
    assert len(state["coverage"]) == len(full_audit(haidian).coverage)
    assert_same_numbers(engine, full_audit(haidian))
    row = next(r for r in state["coverage"] if r["category"] == "kindergarten" and r["threshold"] == "target")
    assert row["population_share"] == pytest.approx(
        population_share(engine.coverage, "kindergarten"), abs=1e-6
    )
    assert {"population_within", "elderly_within", "children_within", "disabled_within"} <= set(row)


def test_times_tell_beyond_the_sweep_from_no_path(client, engine, haidian):
    # The page colours a home beyond the sweep past the largest threshold and only a home
    # with no path grey: the reach sent equals the full audit's <key>_reach, home by home.
    audit = full_audit(haidian).homes
    seen = set()
    for key in ("kindergarten", "clinic", "primary_school"):
        times = client.get(f"/api/times?category={key}").json()
        assert times["reach"] == [str(v) for v in audit[f"{key}_reach"]]
        beyond = [t for t, r in zip(times["time_s"], times["reach"], strict=True) if r == "beyond"]
        assert all(t is None for t in beyond)
        seen |= set(times["reach"])
    assert "beyond" in seen and "reached" in seen


def test_add_facility_equals_run_audit_with_it_in_a_file(client, engine, haidian, tmp_path):
    before = population_share(engine.coverage, "clinic")
    lon, lat = _point_near_street(engine, int(np.argmin(engine.net.x + engine.net.y)) + 400)
    out = client.post(
        "/api/edits", json={"kind": "add_facility", "category": "社区卫生服务站", "lon": lon, "lat": lat}
    )
    assert out.status_code == 200, out.text
    edit = out.json()["edit"]
    assert (
        edit["category"] == "clinic" and edit["facility_id"] == "scenario/1" and edit["changed"] == ["clinic"]
    )
    # The same facility in a file, through planner audit's own loading.
    path = tmp_path / "extra.geojson"
    gpd.GeoDataFrame(
        {"facility_id": ["scenario/1"], "category": ["clinic"], "name": [None]},
        geometry=[shapely.Point(lon, lat)],
        crs=4326,
    ).to_file(path)
    result = run_audit(ROOT / SAMPLE, tmp_path / "out", facilities=path, isochrones="none", map_html=False)
    assert_same_numbers(engine, result)
    assert population_share(engine.coverage, "clinic") > before  # the edit did change the numbers
    # The page gets the edited category's facilities back, in lon/lat.
    clinics = out.json()["facilities_of"]["clinic"]
    assert [f["facility_id"] for f in clinics] == ["scenario/1"]
    assert (clinics[0]["lon"], clinics[0]["lat"]) == pytest.approx((lon, lat), abs=1e-6)


def test_delete_facility_equals_audit_without_it(client, engine, haidian):
    victim = _single_facility(engine, "supermarket")
    before = times(engine.homes, "supermarket")
    out = client.post("/api/edits", json={"kind": "delete_facility", "facility_id": victim})
    assert out.status_code == 200, out.text
    assert_same_numbers(engine, full_audit(without(haidian, victim)))
    assert (times(engine.homes, "supermarket") >= before).all()
    assert (times(engine.homes, "supermarket") > before).any()


def test_move_facility_equals_audit_with_it_elsewhere(client, engine, haidian):
    victim = _single_facility(engine, "kindergarten")
    old = engine.current_facilities().set_index("facility_id").loc[victim]
    lon, lat = _point_near_street(engine, 700, 20, 20)
    out = client.post(
        "/api/edits", json={"kind": "move_facility", "facility_id": victim, "lon": lon, "lat": lat}
    )
    assert out.status_code == 200, out.text
    moved = gpd.GeoDataFrame(
        {"facility_id": [victim], "category": ["kindergarten"], "name": [old["name"]]},
        geometry=[shapely.Point(metric_xy(engine, lon, lat))],
        crs=haidian.crs,
    )
    assert_same_numbers(engine, full_audit(without(haidian, victim), extra_facilities=moved))


def test_population_of_a_home_and_of_a_compound(client, engine, haidian):
    from planner.demand import homes_from_region

    home = str(engine.homes.loc[engine.homes["compound_id"].isna(), "home_id"].iloc[7])
    compound = str(engine.homes["compound_id"].dropna().iloc[0])
    in_comp = (engine.homes["compound_id"] == compound).to_numpy()
    old = engine.homes["population"].to_numpy(float).copy()
    assert (
        client.post(
            "/api/edits", json={"kind": "set_population", "home_id": home, "population": 900}
        ).status_code
        == 200
    )
    out = client.post(
        "/api/edits", json={"kind": "set_population", "compound_id": compound, "population": 5000}
    )
    assert out.status_code == 200, out.text
    assert engine.homes.loc[in_comp, "population"].sum() == pytest.approx(5000)
    # The compound's people spread as before (each home keeps its share).
    share = old[in_comp] / old[in_comp].sum()
    assert engine.homes.loc[in_comp, "population"].to_numpy() == pytest.approx(5000 * share)
    expected = homes_from_region(haidian)
    expected.loc[expected["home_id"] == home, "population"] = 900.0
    expected.loc[in_comp, "population"] = 5000 * share
    for col, value in (
        ("elderly", settings.elderly_share),
        ("children", settings.children_share),
        ("disabled", settings.disabled_share),
        ("households", 1 / settings.persons_per_household),
    ):
        expected[col] = expected["population"] * value
    assert_same_numbers(engine, full_audit(haidian, homes=expected))
    assert out.json()["totals"]["population"] == pytest.approx(expected["population"].sum(), rel=1e-9)


def _with_edge(net, a: int, b: int, length_m: float):
    t = length_m / net.walk_speed_mps
    return dataclasses.replace(
        net,
        u=np.r_[net.u, a, b],
        v=np.r_[net.v, b, a],
        length_m=np.r_[net.length_m, length_m, length_m],
        time_s=np.r_[net.time_s, t, t],
        _graphs={},
        _tree=None,
    )


def _shortcut(net, rank: int = 0) -> tuple[int, int]:
    """Two street corners under 150 m apart whose way by the streets is the longest (a
    footbridge over a railway or a river would join them)."""
    from scipy.sparse.csgraph import dijkstra

    pairs = net.tree.query_pairs(150.0, output_type="ndarray")
    starts = np.unique(pairs[:, 0])
    by_street = dijkstra(net.graph("length"), indices=starts)
    row = np.searchsorted(starts, pairs[:, 0])
    detour = by_street[row, pairs[:, 1]]
    detour[~np.isfinite(detour)] = 0.0
    best = np.argsort(-detour, kind="stable")
    # Pairs of different corners, ranked by the way round they save.
    seen, picked = set(), []
    for i in best:
        a, b = (int(v) for v in pairs[i])
        if a not in seen and b not in seen:
            picked.append((a, b))
            seen.update((a, b))
        if len(picked) > rank:
            break
    a, b = picked[rank]
    assert detour[best[0]] > 1000.0
    return a, b


def test_add_path_equals_audit_on_the_network_with_it(client, engine, haidian):
    net = engine.net
    a, b = _shortcut(net)
    out = client.post(
        "/api/edits",
        json={
            "kind": "add_path",
            "coordinates": [
                list(lonlat(engine, net.x[a], net.y[a])),
                list(lonlat(engine, net.x[b], net.y[b])),
            ],
        },
    )
    assert out.status_code == 200, out.text
    edit = out.json()["edit"]
    assert edit["nodes"] == [str(net.node_id[a]), str(net.node_id[b])]
    straight = float(np.hypot(net.x[a] - net.x[b], net.y[a] - net.y[b]))
    assert edit["length_m"] == pytest.approx(straight, abs=1e-3)
    base = build_network(haidian)
    result = full_audit(haidian, network=_with_edge(base, a, b, edit["length_m"]))
    assert_same_numbers(engine, result)
    faster = False
    base_result = full_audit(haidian)
    for c in engine.categories:
        new, old = times(engine.homes, c.key), times(base_result.homes, c.key)
        assert (new <= old + 1e-9).all()
        faster |= bool((new < old - 1.0).any())
    assert faster


def test_close_path_equals_audit_on_the_network_without_it(client, engine, haidian):
    net = engine.net
    i = int(np.argmax(net.length_m))  # the longest street segment
    a, b = int(net.u[i]), int(net.v[i])
    mid = lonlat(engine, (net.x[a] + net.x[b]) / 2, (net.y[a] + net.y[b]) / 2)
    out = client.post("/api/edits", json={"kind": "close_path", "lon": mid[0], "lat": mid[1]})
    assert out.status_code == 200, out.text
    assert sorted(out.json()["edit"]["nodes"]) == sorted([str(net.node_id[a]), str(net.node_id[b])])
    base = build_network(haidian)
    keep = ~(((base.u == a) & (base.v == b)) | ((base.u == b) & (base.v == a)))
    closed = dataclasses.replace(
        base,
        u=base.u[keep],
        v=base.v[keep],
        length_m=base.length_m[keep],
        time_s=base.time_s[keep],
        _graphs={},
        _tree=None,
    )
    assert keep.sum() == base.n_edges - 2
    assert_same_numbers(engine, full_audit(haidian, network=closed))


def _components(net, keep) -> int:
    """Strongly connected parts of the network with only the edges ``keep`` (all when None)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    u, v = (net.u, net.v) if keep is None else (net.u[keep], net.v[keep])
    graph = csr_matrix((np.ones(len(u)), (u, v)), shape=(net.n_nodes, net.n_nodes))
    return connected_components(graph, directed=True, connection="strong")[0]


def _only_way_out(cost, net, a: int, i: int) -> bool:
    """Node ``a``'s best path leaves it by edge ``i`` (a → b) and by no other edge of ``a``."""
    b = int(net.v[i])
    if not np.isclose(cost[a], net.time_s[i] + cost[b], rtol=1e-9, atol=1e-6):
        return False
    out = np.flatnonzero(net.u == a)
    return int(np.isclose(cost[a], net.time_s[out] + cost[net.v[out]], rtol=1e-9, atol=1e-6).sum()) == 1


def test_closing_a_street_sweeps_only_the_categories_using_it(client, engine, haidian):
    """Only categories whose best paths cross the street are swept again; every number still
    equals a full audit on the network without it."""
    from planner.serve.engine import tight_edges

    net = engine.net
    keys = [c.key for c in engine.categories]
    pick = None
    for i in np.argsort(-net.length_m):  # long streets first
        a, b = int(net.u[i]), int(net.v[i])
        gone = ((net.u == a) & (net.v == b)) | ((net.u == b) & (net.v == a))
        used = [
            k for k in keys if tight_edges(engine.node_time[k], net.u[gone], net.v[gone], net.time_s[gone])
        ]
        sole = [k for k in used if _only_way_out(engine.node_time[k], net, a, i)]
        if sole and len(used) <= len(keys) - 5 and _components(net, ~gone) == _components(net, None):
            pick = (a, b, used, sole)
            break
    assert pick, "no street used by some categories only"
    a, b, used, sole = pick
    before = {k: engine.node_time[k].copy() for k in keys}
    lon, lat = lonlat(engine, net.x[a], net.y[a])
    nodes = [str(net.node_id[a]), str(net.node_id[b])]
    out = client.post("/api/edits", json={"kind": "close_path", "nodes": nodes, "lon": lon, "lat": lat})
    assert out.status_code == 200, out.text
    assert engine.last_swept == used and out.json()["edit"]["changed"] == used
    for k in keys:
        if k in sole:
            assert engine.node_time[k][a] > before[k][a] + 1e-6  # node a now takes a longer way
        if k not in used:
            np.testing.assert_array_equal(engine.node_time[k], before[k])
    base = build_network(haidian)
    keep = ~(((base.u == a) & (base.v == b)) | ((base.u == b) & (base.v == a)))
    closed = dataclasses.replace(
        base,
        u=base.u[keep],
        v=base.v[keep],
        length_m=base.length_m[keep],
        time_s=base.time_s[keep],
        _graphs={},
        _tree=None,
    )
    assert_same_numbers(engine, full_audit(haidian, network=closed))


def test_a_new_path_closed_by_a_click_on_it_gives_the_region_back(client, engine, haidian):
    net = engine.net
    a, b = _shortcut(net)
    ends = [list(lonlat(engine, net.x[a], net.y[a])), list(lonlat(engine, net.x[b], net.y[b]))]
    assert client.post("/api/edits", json={"kind": "add_path", "coordinates": ends}).status_code == 200
    mid = lonlat(engine, (net.x[a] + net.x[b]) / 2, (net.y[a] + net.y[b]) / 2)
    out = client.post("/api/edits", json={"kind": "close_path", "lon": mid[0], "lat": mid[1]})
    assert out.status_code == 200, out.text
    assert sorted(out.json()["edit"]["nodes"]) == sorted([str(net.node_id[a]), str(net.node_id[b])])
    assert engine.net.n_edges == net.n_edges
    assert_same_numbers(engine, full_audit(haidian))


def test_closing_the_only_street_to_homes_leaves_them_unreachable(client, engine, haidian):
    """A dead end's street closed: the homes reached only through it have no path any more,
    in every category, as a full audit on the network without it finds."""
    net = engine.net
    ends, counts = np.unique(np.r_[net.u, net.v], return_counts=True)
    dead = set(ends[counts == 2].tolist())  # one street, both directions
    homes_at = engine.access.owner[np.isin(engine.access.node, list(dead))]
    only_there = [h for h in np.unique(homes_at) if set(engine.access.node[engine.access.owner == h]) <= dead]
    assert only_there, "no home reached only from a dead end"
    node = int(engine.access.node[engine.access.owner == only_there[0]][0])
    i = int(np.flatnonzero(net.u == node)[0])
    a, b = node, int(net.v[i])
    lon, lat = lonlat(engine, net.x[a], net.y[a])
    nodes = [str(net.node_id[a]), str(net.node_id[b])]
    out = client.post("/api/edits", json={"kind": "close_path", "nodes": nodes, "lon": lon, "lat": lat})
    assert out.status_code == 200, out.text
    assert out.json()["edit"]["changed"] == [c.key for c in engine.categories]
    home = engine.homes.index[only_there[0]]
    assert (engine.homes.loc[home, [f"{c.key}_reach" for c in engine.categories]] == "unreachable").all()
    base = build_network(haidian)
    keep = ~(((base.u == a) & (base.v == b)) | ((base.u == b) & (base.v == a)))
    closed = dataclasses.replace(
        base,
        u=base.u[keep],
        v=base.v[keep],
        length_m=base.length_m[keep],
        time_s=base.time_s[keep],
        _graphs={},
        _tree=None,
    )
    assert_same_numbers(engine, full_audit(haidian, network=closed))


def test_add_gate_equals_audit_with_the_gate_mapped(client, engine, haidian):
    comp = engine.comps.geometry.iloc[0]
    ring = shapely.get_coordinates(shapely.boundary(comp))
    before = engine.homes.copy()
    # The corner of the compound's outline farthest from its mapped gates.
    gates = engine.comps["gate_xy"].iloc[0]
    far = ring[
        int(np.argmax(np.min(np.hypot(*(ring[:, None, :] - gates[None, :, :]).transpose(2, 0, 1)), axis=1)))
    ]
    lon, lat = lonlat(engine, far[0] + 3.0, far[1] + 3.0)  # a click a few metres off the wall
    out = client.post("/api/edits", json={"kind": "add_gate", "lon": lon, "lat": lat})
    assert out.status_code == 200, out.text
    edit = out.json()["edit"]
    assert edit["compound_ids"] == [str(engine.comps["compound_id"].iloc[0])]
    region = with_gates(haidian, [(edit["lon"], edit["lat"])])  # a barrier=gate node on the wall
    assert_same_numbers(engine, full_audit(region))
    inside = (engine.homes["compound_id"] == engine.comps["compound_id"].iloc[0]).to_numpy()
    changed = np.zeros(len(before), bool)
    for c in engine.categories:
        changed |= ~np.isclose(times(engine.homes, c.key), times(before, c.key))
    assert changed[inside].any()


def test_undo_gives_the_loaded_region_back(client, engine, haidian):
    lon, lat = _point_near_street(engine, 300)
    client.post("/api/edits", json={"kind": "add_facility", "category": "market", "lon": lon, "lat": lat})
    client.post("/api/edits", json={"kind": "close_path", "lon": lon, "lat": lat})
    assert len(client.get("/api/state").json()["edits"]) == 2
    assert client.post("/api/undo", json={}).json()["undone"]["kind"] == "close_path"
    assert client.post("/api/undo", json={}).json()["undone"]["kind"] == "add_facility"
    assert client.post("/api/undo", json={}).json()["undone"] is None
    assert_same_numbers(engine, full_audit(haidian))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "build_tower"}, "edit kind 'build_tower': use one of add_facility,"),
        (
            {"kind": "add_facility", "category": "casino", "lon": 116.35, "lat": 40.0},
            "edit add_facility: 'category': unknown category 'casino'",
        ),
        (
            {"kind": "add_facility", "category": "clinic", "lon": 120.0, "lat": 40.0},
            "is outside the region's streets",
        ),
        (
            {"kind": "add_facility", "category": "clinic", "lon": "x", "lat": 40.0},
            "edit add_facility: 'lon': 'x' must be a finite number",
        ),
        ({"kind": "add_facility", "category": "clinic", "lat": 40.0}, "edit add_facility: 'lon' is missing"),
        (
            {"kind": "add_facility", "category": "clinic", "lon": 116.35, "lat": 40.0, "colour": 1},
            "edit add_facility: unknown key 'colour'",
        ),
        ({"kind": "delete_facility", "facility_id": "node/1"}, "no facility 'node/1' in the scenario"),
        ({"kind": "set_population", "home_id": "nowhere", "population": 5}, "no home with home_id 'nowhere'"),
        ({"kind": "set_population", "home_id": "x", "population": -5}, "'population' -5 must be 0 or more"),
        ({"kind": "add_gate", "lon": 116.335, "lat": 39.989}, "no gated compound's wall within 50 m"),
        ({"kind": "add_path", "coordinates": [[116.35, 40.0]]}, "'coordinates' must be 2 to 1000"),
    ],
)
def test_bad_edits_are_refused_in_one_line_and_change_nothing(client, engine, body, message):
    before = engine.coverage.copy()
    out = client.post("/api/edits", json=body)
    assert out.status_code == 400
    error = out.json()["error"]
    assert message in error and "\n" not in error
    pd.testing.assert_frame_equal(engine.coverage, before)
    assert engine.edits == []


def test_requests_must_be_json_from_this_computer(session, client):
    from starlette.testclient import TestClient

    from planner.serve.app import create_app

    out = client.post(
        "/api/edits",
        content=b"kind=add_facility",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (
        out.status_code == 400
        and out.json()["error"] == "request: send JSON with Content-Type: application/json"
    )
    assert (
        client.post("/api/edits", content=b"{oops", headers={"content-type": "application/json"}).status_code
        == 400
    )
    # A page elsewhere that rebinds its name to 127.0.0.1 is refused by the Host check.
    assert client.get("/api/state", headers={"host": "evil.example"}).status_code == 400
    assert TestClient(create_app(session), base_url="http://localhost:8000").get("/").status_code == 200


def test_beyond_loopback_every_request_needs_the_token(session):
    from starlette.testclient import TestClient

    from planner._errors import InputError
    from planner.serve.app import create_app

    with pytest.raises(InputError, match=r"--host 0\.0\.0\.0: serving beyond this computer needs a token"):
        create_app(session, host="0.0.0.0")
    c = TestClient(create_app(session, host="0.0.0.0", token="s3cret"), base_url="http://10.0.0.5")
    for path in ("/", "/api/state", "/api/times?category=clinic", "/api/scenarios"):
        assert c.get(path).status_code == 403
        assert c.get(path, headers={"X-Planner-Token": "wrong"}).status_code == 403
        assert c.get(path, headers={"X-Planner-Token": "s3cret"}).status_code == 200
    assert c.get("/?token=s3cret").status_code == 200
    edit = {"kind": "set_population", "home_id": "x", "population": 1}
    assert c.post("/api/edits", json=edit).status_code == 403
    assert session.engine.edits == []


def test_scenarios_save_load_compare(client, engine, session, haidian):
    lon, lat = _point_near_street(engine, 200)
    client.post("/api/edits", json={"kind": "add_facility", "category": "clinic", "lon": lon, "lat": lat})
    saved = client.post("/api/scenarios/save", json={"name": "诊所-north"}).json()
    assert saved["scenarios"] == ["诊所-north"]
    # A GeoJSON of the edits plus the settings, readable by any GIS.
    frame = gpd.read_file(saved["path"])
    assert list(frame["kind"]) == ["add_facility"] and frame.geometry.iloc[0].x == pytest.approx(lon)
    data = json.loads(Path(saved["path"]).read_text(encoding="utf-8"))
    assert data["planner_scenario"]["settings"]["minutes"] == [5, 10, 15]
    with_clinic = engine.coverage.copy()
    within_after = engine.within()["clinic"][0].copy()
    client.post("/api/undo", json={})
    assert client.post("/api/scenarios/save", json={"name": "empty"}).status_code == 200
    # Compare: people and elderly newly within the clinic's target, worked out by hand.
    rows = {
        r["key"]: r
        for r in client.post("/api/scenarios/compare", json={"a": "empty", "b": "诊所-north"}).json()["rows"]
    }
    pop, old = engine.homes["population"].to_numpy(), engine.homes["elderly"].to_numpy()
    assert not engine.within()["clinic"][0].any()  # nothing within before: everyone within is new
    assert rows["clinic"]["people_newly_within"] == pytest.approx(pop[within_after].sum(), abs=1e-5)
    assert rows["clinic"]["people_newly_within"] > 0
    client.post("/api/scenarios/load", json={"name": "诊所-north"})
    new_elderly = engine.within()["clinic"][1]
    assert rows["clinic"]["elderly_newly_within"] == pytest.approx(old[new_elderly].sum(), abs=1e-5)
    assert rows["clinic"]["people_no_longer_within"] == 0
    assert rows["kindergarten"]["people_newly_within"] == 0
    pd.testing.assert_frame_equal(engine.coverage, with_clinic)
    assert client.get("/api/scenarios").json() == {
        "scenarios": ["empty", "诊所-north"],
        "current": "诊所-north",
    }
    # Refusals: a bad name, a missing scenario, one made for another region.
    assert (
        "use 1 to 64 letters" in client.post("/api/scenarios/save", json={"name": "../etc"}).json()["error"]
    )
    assert (
        client.post("/api/scenarios/save", json={}).json()["error"].startswith("request: 'name' is missing")
    )
    assert (
        "no scenario action 'delete'"
        in client.post("/api/scenarios/delete", json={"name": "x"}).json()["error"]
    )
    assert "no file gone.geojson" in client.post("/api/scenarios/load", json={"name": "gone"}).json()["error"]
    data["planner_scenario"]["settings"]["region"] = "shenzhen"
    (session.folder.folder / "other.geojson").write_text(json.dumps(data), encoding="utf-8")
    err = client.post("/api/scenarios/load", json={"name": "other"}).json()["error"]
    assert err.startswith("scenario 'other': made with region 'shenzhen'")
    pd.testing.assert_frame_equal(engine.coverage, with_clinic)  # the refused load changed nothing


def test_export_is_the_audit_of_the_scenario(client, engine, haidian, tmp_path):
    lon, lat = _point_near_street(engine, 250)
    client.post("/api/edits", json={"kind": "add_facility", "category": "pharmacy", "lon": lon, "lat": lat})
    client.post("/api/scenarios/save", json={"name": "pharmacy"})
    out = client.post("/api/scenarios/export", json={"name": "pharmacy"}).json()
    folder = tmp_path / "scenarios" / "pharmacy-audit"
    assert out["path"] == str(folder)
    for name in ("homes.gpkg", "facilities.gpkg", "coverage.csv", "summary.json", "map.html"):
        assert (folder / name).is_file(), name
    path = tmp_path / "extra.geojson"
    gpd.GeoDataFrame(
        {"facility_id": ["scenario/1"], "category": ["pharmacy"], "name": [None]},
        geometry=[shapely.Point(lon, lat)],
        crs=4326,
    ).to_file(path)
    run_audit(ROOT / SAMPLE, tmp_path / "audit", facilities=path, map_html=False)
    mine = pd.read_csv(folder / "coverage.csv")
    theirs = pd.read_csv(tmp_path / "audit" / "coverage.csv")
    pd.testing.assert_frame_equal(mine, theirs)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["facilities"]["pharmacy"] == 3
    homes = gpd.read_file(folder / "homes.gpkg")
    assert homes["pharmacy_time_s"].to_numpy() == pytest.approx(
        engine.homes["pharmacy_time_s"].to_numpy(), nan_ok=True
    )


def test_proposed_sites_come_back_as_edits(client, engine, monkeypatch):
    import planner.siting

    xy = [(engine.net.x[100], engine.net.y[100]), (engine.net.x[600], engine.net.y[600])]
    calls = {}

    def fake_site(region, category, **kw):
        calls.update(kw, category=category)
        proposed = gpd.GeoDataFrame(
            {"rank": [1, 2], "population_newly_covered": [321.5, 12.0]},
            geometry=shapely.points(xy),
            crs=region.crs,
        )
        return type("R", (), {"proposed": proposed, "report": {}})()

    monkeypatch.setattr(planner.siting, "site", fake_site)
    out = client.post("/api/propose", json={"category": "elderly_care", "new": 2})
    assert out.status_code == 200, out.text
    props = out.json()["proposals"]
    assert calls["category"] == "elderly_care" and calls["new"] == 2 and calls["network"] is engine.net
    assert [p["population_newly_covered"] for p in props] == [321.5, 12.0]
    first = props[0]["edit"]
    assert metric_xy(engine, first["lon"], first["lat"]) == pytest.approx(xy[0], abs=0.05)
    accepted = client.post("/api/edits", json=first)  # accepted one by one, as any edit
    assert accepted.status_code == 200 and accepted.json()["edit"]["category"] == "elderly_care"
    assert client.post("/api/propose", json={"category": "elderly_care", "new": 0}).status_code == 400


def test_propose_by_the_pure_model_and_accept_equals_an_audit_with_the_site(client, engine, tmp_path):
    """Real siting (no stub): the pure maximal-coverage model proposes an elderly-care site;
    accepted as an edit, the numbers are those of a full audit with that facility in a file."""
    before = population_share(engine.coverage, "elderly_care")
    out = client.post(
        "/api/propose", json={"category": "elderly_care", "new": 1, "standards": False, "model": "mclp"}
    )
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["standards"] is False and body["model"] == "mclp" and "why" not in body
    (prop,) = body["proposals"]
    assert prop["population_newly_covered"] > 0 and prop["edit"]["kind"] == "add_facility"
    accepted = client.post("/api/edits", json=prop["edit"])
    assert accepted.status_code == 200, accepted.text
    path = tmp_path / "extra.geojson"
    gpd.GeoDataFrame(
        {"facility_id": ["scenario/1"], "category": ["elderly_care"], "name": ["proposed 1"]},
        geometry=[shapely.Point(prop["edit"]["lon"], prop["edit"]["lat"])],
        crs=4326,
    ).to_file(path)
    result = run_audit(ROOT / SAMPLE, tmp_path / "out", facilities=path, isochrones="none", map_html=False)
    assert_same_numbers(engine, result)
    assert population_share(engine.coverage, "elderly_care") > before


def test_propose_by_the_standards_says_why_nothing_is_proposed(client):
    out = client.post("/api/propose", json={"category": "elderly_care", "new": 2})
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["standards"] is True and body["proposals"] == []
    # The siting's own reason: in this small sample no land reaches the minimum catchment.
    assert (
        "no candidate site reaches the minimum catchment within the target: nothing proposed" in body["why"]
    )
    assert body["why"].endswith("(try the pure model: standards off)")
    assert any(
        line.startswith("by the standards: 37 of 39 candidate sites big enough") for line in body["lines"]
    )
    bad = client.post("/api/propose", json={"category": "elderly_care", "model": "lscp"})
    assert bad.status_code == 400 and "propose: 'model' 'lscp': use one of mclp, pmedian, pcenter" in bad.text


def test_the_page_is_offline_and_escapes_the_region_name(client, session):
    session.engine.region = dataclasses.replace(session.engine.region, name="<script>alert(1)</script>")
    try:
        html = client.get("/").text
    finally:
        session.engine.region = dataclasses.replace(session.engine.region, name="beijing_haidian_cau")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; — planner serve" in html
    assert "<script>alert(1)" not in html
    assert "L.map(" in html and "leaflet" in html.lower()
    import re

    assert not re.search(r"""<(script|link)[^>]+(src|href)=["']?(https?:)?//""", html)
    import planner.serve

    script = (Path(planner.serve.__file__).parent / "page.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "textContent" in script


def test_isochrone_of_the_target_circle_follows_the_edits(client, engine, haidian):
    from planner.audit import audit as full

    assert client.get("/api/isochrone", params={"category": "clinic"}).json()["features"] == []
    lon, lat = _point_near_street(engine, 400)
    client.post("/api/edits", json={"kind": "add_facility", "category": "clinic", "lon": lon, "lat": lat})
    feats = client.get("/api/isochrone", params={"category": "clinic"}).json()["features"]
    assert len(feats) == 1
    mine = shapely.geometry.shape(feats[0]["geometry"])
    assert mine.contains(shapely.Point(lon, lat))
    extra = gpd.GeoDataFrame(
        {"facility_id": ["scenario/1"], "category": ["clinic"], "name": [None]},
        geometry=[shapely.Point(metric_xy(engine, lon, lat))],
        crs=haidian.crs,
    )
    theirs = full(haidian, categories=["clinic"], extra_facilities=extra, progress=False).isochrones.to_crs(
        4326
    )
    theirs = theirs.geometry.iloc[0]
    # The same area as the audit's isochrone, up to the 2 m simplification sent to the page.
    assert mine.symmetric_difference(theirs).area / theirs.area < 0.01
    assert client.get("/api/isochrone", params={"category": "nope"}).status_code == 400


def test_a_sequence_of_edits_equals_one_audit_of_them_all(client, engine, haidian):
    """Paths merged into a scenario already edited (a gate, a facility, another path), then a
    closure: the numbers of one audit of the region with all of them."""
    net0 = engine.net
    p1, p2 = _shortcut(net0, 0), _shortcut(net0, 1)

    def path(pair):
        a, b = pair
        coords = [list(lonlat(engine, net0.x[n], net0.y[n])) for n in (a, b)]
        out = client.post("/api/edits", json={"kind": "add_path", "coordinates": coords})
        assert out.status_code == 200, out.text
        return out.json()["edit"]

    comp = engine.comps.geometry.iloc[0]
    corner = shapely.get_coordinates(shapely.boundary(comp))[0]
    gate = client.post(
        "/api/edits",
        json={"kind": "add_gate", "lon": lonlat(engine, *corner)[0], "lat": lonlat(engine, *corner)[1]},
    ).json()["edit"]
    first = path(p1)
    lon, lat = _point_near_street(engine, 123)
    client.post("/api/edits", json={"kind": "add_facility", "category": "clinic", "lon": lon, "lat": lat})
    second = path(p2)
    region = with_gates(haidian, [(gate["lon"], gate["lat"])])
    net = build_network(region)
    ids = {str(n): i for i, n in enumerate(net.node_id)}
    for edit in (first, second):
        net = _with_edge(net, ids[edit["nodes"][0]], ids[edit["nodes"][1]], edit["length_m"])
    extra = gpd.GeoDataFrame(
        {"facility_id": ["scenario/1"], "category": ["clinic"], "name": [None]},
        geometry=[shapely.Point(metric_xy(engine, lon, lat))],
        crs=haidian.crs,
    )
    assert_same_numbers(engine, full_audit(region, network=net, extra_facilities=extra))
    # Closing the first path again gives the audit with the second only.
    a, b = ids[first["nodes"][0]], ids[first["nodes"][1]]
    mid = lonlat(engine, (net.x[a] + net.x[b]) / 2, (net.y[a] + net.y[b]) / 2)
    closed = client.post("/api/edits", json={"kind": "close_path", "lon": mid[0], "lat": mid[1]}).json()[
        "edit"
    ]
    assert sorted(closed["nodes"]) == sorted(first["nodes"])
    net = _with_edge(
        build_network(region), ids[second["nodes"][0]], ids[second["nodes"][1]], second["length_m"]
    )
    assert_same_numbers(engine, full_audit(region, network=net, extra_facilities=extra))


def test_a_failure_inside_an_edit_leaves_the_scenario_as_it_was(client, engine, monkeypatch):
    lon, lat = _point_near_street(engine, 321)
    client.post("/api/edits", json={"kind": "add_facility", "category": "market", "lon": lon, "lat": lat})
    before = engine.coverage.copy()
    sweep_new, calls = type(engine)._sweep_new, []

    def fails_once(self, key, row):  # a bug in the middle of the clinic's edit, once
        calls.append(key)
        if key == "clinic" and calls.count("clinic") == 1:
            raise ZeroDivisionError("bug")
        return sweep_new(self, key, row)

    monkeypatch.setattr(type(engine), "_sweep_new", fails_once)
    with pytest.raises(ZeroDivisionError):
        engine.apply({"kind": "add_facility", "category": "clinic", "lon": lon, "lat": lat})
    assert calls == ["clinic", "market"]  # the failed edit, then the scenario rebuilt from its edits
    assert [e["kind"] for e in engine.edits] == ["add_facility"]
    assert (engine.current_facilities()["category"] == "clinic").sum() == 0
    pd.testing.assert_frame_equal(engine.coverage, before)
