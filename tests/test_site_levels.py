"""Several categories together (planner.site_levels): a shared complex beats separate sites,
co-location changes the answer; both against brute force over every placement."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from browser import chromium_available, open_in_browser

from planner._errors import InputError
from planner.optimize.constrained import ConstrainedCoverage
from planner.site_levels import CategoryPart, DistrictModel, adjacency

INF = np.inf
MIN = 5.0


def _part(key, cost, w, floor=0.0, max_new=None, **kw):
    return CategoryPart(
        key,
        ConstrainedCoverage.from_cost_matrix(
            np.asarray(cost, float), np.asarray(w, float), p=None, minutes=MIN, **kw
        ),
        0,
        floor,
        max_new,
    )


def _brute(parts, space=None, max_sites=None, colocate=(), adjacent=None):
    """Best total covered weight over every placement x[k][j] (no capacities: a home is
    covered when an open site of its category is within reach)."""
    m = parts[0].model.cost.shape[1]
    space = np.full(m, INF) if space is None else np.asarray(space, float)
    adjacent = np.eye(m, dtype=bool) if adjacent is None else adjacent
    best, best_x = -1.0, None
    for bits in itertools.product([0, 1], repeat=len(parts) * m):
        x = np.array(bits).reshape(len(parts), m).astype(bool)
        if any(p.max_new is not None and x[k].sum() > p.max_new for k, p in enumerate(parts)):
            continue
        if max_sites is not None and x.any(axis=0).sum() > max_sites:
            continue
        floors = np.array([p.floor_m2 for p in parts])
        if ((floors[:, None] * x).sum(axis=0) > space + 1e-9).any():
            continue
        keys = [p.key for p in parts]
        if any(
            x[keys.index(a), j] and not (x[keys.index(b)] & adjacent[j]).any()
            for a, b in colocate
            for j in range(m)
        ):
            continue
        total = 0.0
        for k, p in enumerate(parts):
            c = p.model.cost.toarray()
            c[p.model.cost.toarray() == 0] = INF
            reach = (c <= 60 * MIN) & x[k][None, :]
            total += float(p.model.weights[reach.any(axis=1)].sum())
        if total > best + 1e-9:
            best, best_x = total, x
    return best, best_x


def _complex_instance():
    # Candidates c0 (between both groups), c1 (near A's homes), c2 (near B's homes).
    a_cost = [[100, 100, INF], [INF, 100, INF]]  # A: 10 people reach c0 and c1, 3 only c1
    b_cost = [[100, INF, 100], [INF, INF, 100]]  # B: 10 people reach c0 and c2, 3 only c2
    return a_cost, b_cost, [10, 3]


def test_a_shared_complex_beats_separate_sites():
    a_cost, b_cost, w = _complex_instance()
    parts = [_part("elderly_care", a_cost, w, floor=350), _part("community_service", b_cost, w, floor=600)]
    plan = DistrictModel(parts, site_space_m2=[1000, 1000, 1000], max_sites=1).solve()
    # One site: the complex at c0 serves 10 + 10; a single-use site at best 13.
    assert plan.objective == 20 == _brute(parts, [1000, 1000, 1000], 1)[0]
    assert plan.complexes == {0: ["elderly_care", "community_service"]}
    # Too small for both (950 < 350 + 600): c0 hosts one, and a single-use site wins.
    small = DistrictModel(parts, site_space_m2=[900, 1000, 1000], max_sites=1).solve()
    assert small.objective == 13 == _brute(parts, [900, 1000, 1000], 1)[0]
    assert small.complexes == {}
    # Two sites: separate sites c1 and c2 (26) beat the complex.
    two = DistrictModel(parts, site_space_m2=[1000, 1000, 1000], max_sites=2).solve()
    assert two.objective == 26 == _brute(parts, [1000, 1000, 1000], 2)[0]
    assert {k: list(v) for k, v in two.sites.items()} == {"elderly_care": [1], "community_service": [2]}


def test_colocation_changes_the_answer():
    # Health centre: 10 people best served from c0, 6 from c1. Elderly care: 10 from c2, 8 from c1,
    # 2 from c0. The three candidates are 1 km apart: only a site is next to itself.
    h_cost = [[100, INF, INF], [INF, 100, INF]]
    e_cost = [[INF, INF, 100], [INF, 100, INF], [100, INF, INF]]
    parts = [
        _part("health_centre", h_cost, [10, 6], max_new=1),
        _part("elderly_care", e_cost, [10, 8, 2], max_new=1),
    ]
    adj = adjacency(np.array([[0, 0], [1000, 0], [2000, 0]]), 50.0)
    free = DistrictModel(parts).solve()
    assert free.objective == 20 == _brute(parts)[0]
    assert list(free.sites["health_centre"]) == [0] and list(free.sites["elderly_care"]) == [2]
    together = DistrictModel(parts, colocate=[("health_centre", "elderly_care")], adjacent=adj).solve()
    best = _brute(parts, colocate=[("health_centre", "elderly_care")], adjacent=adj)[0]
    assert together.objective == 14 == best
    assert list(together.sites["health_centre"]) == [1] == list(together.sites["elderly_care"])
    # An existing elderly-care facility next to c0 satisfies the rule there.
    near = DistrictModel(
        parts,
        colocate=[("health_centre", "elderly_care")],
        adjacent=adj,
        existing_near={"elderly_care": np.array([True, False, False])},
    ).solve()
    assert near.objective == 20 and list(near.sites["health_centre"]) == [0]


@pytest.mark.parametrize("seed", range(12))
def test_random_districts_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    m = 3
    parts = []
    for k in range(2):
        n = 4
        cost = np.where(rng.random((n, m)) < 0.5, rng.uniform(10, 290, (n, m)), INF)
        parts.append(
            _part(
                f"c{k}",
                cost,
                rng.integers(1, 10, n),
                floor=float(rng.integers(100, 600)),
                max_new=int(rng.integers(1, 3)),
            )
        )
    space = rng.integers(300, 1200, m).astype(float)
    max_sites = int(rng.integers(1, 3))
    xy = rng.uniform(0, 200, (m, 2))
    adj = adjacency(xy, 80.0)
    coloc = [("c0", "c1")] if seed % 2 else []
    plan = DistrictModel(
        parts, site_space_m2=space, max_sites=max_sites, colocate=coloc, adjacent=adj
    ).solve()
    assert plan.objective == pytest.approx(_brute(parts, space, max_sites, coloc, adj)[0])


def test_district_refuses_an_unknown_colocation_category():
    a_cost, _, w = _complex_instance()
    with pytest.raises(InputError, match="co-location"):
        DistrictModel([_part("a", a_cost, w)], colocate=[("x", "a")])


def test_district_on_nanjing_keeps_every_rule(tmp_path, capsys):
    from conftest import SAMPLES

    from planner.candidates import land_candidates
    from planner.cli import main
    from planner.site_levels import site_district
    from planner.sources import load_region

    region = load_region(str(SAMPLES / "nanjing_xinjiekou.osm.pbf"))
    keys = ["health_centre", "elderly_care", "community_service", "clinic"]
    res = site_district(region, keys, max_sites=2)
    assert len(res.sites) == 2 and res.sites["complex"].all()  # two sites, each hosting several
    rules = res.settings["categories"]
    land = land_candidates(region).reset_index(drop=True)
    xy = np.c_[land.geometry.x, land.geometry.y]
    for key, loads in res.plan.site_loads.items():
        # Every new facility takes at least its catchment; two of a kind stand the spacing apart.
        assert all(v >= rules[key]["min_catchment_residents"] for v in loads.values())
        js = list(loads)
        for a, b in itertools.combinations(js, 2):
            assert np.hypot(*(xy[a] - xy[b])) >= rules[key]["min_spacing_m"]
    # What a site hosts fits in its floor space.
    space = land.set_index("candidate_id")["floor_m2"]
    for row in res.sites.itertuples():
        assert sum(rules[k]["space_m2"] for k in row.categories.split(";")) <= space[row.candidate_id]
    cov = res.coverage.set_index("category")
    assert (cov["people_after"] >= cov["people_before"]).all() and cov["people_after"].sum() > cov[
        "people_before"
    ].sum()
    out = tmp_path / "district"
    assert (
        main(
            [
                "site",
                "--osm",
                "nanjing_xinjiekou",
                "--category",
                ",".join(keys),
                "--standards",
                "--new",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "2 sites used, 2 shared complexes" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "district_coverage.csv",
        "district_sites.gpkg",
        "map.html",
        "summary.json",
    ]
    if chromium_available():  # the map opens offline, both sites drawn, no script from data
        result = open_in_browser(out / "map.html")
        assert result["errors"] == [] and result["external"] == [] and result["dialogs"] == []
        assert result["paths"] == 2
