"""The public API as the README, docs/ and the notebooks show it: every import path and call.

When a module moves inside the package, these imports must keep working (re-exported from
the package's ``__init__``). The README's Python blocks are run almost as written (with the
bundled sample plans for "my_estate.geojson"); the notebooks' calls are repeated here
directly, without a Jupyter kernel (test_notebooks runs the notebooks themselves).
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _resolve(dotted: str):
    """The object a dotted name such as ``planner.network.cost_matrix`` names."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def _names_in_docs() -> list[str]:
    names = set()
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"`(planner(?:\.[A-Za-z_]\w*)+)", text))
    return sorted(n for n in names if not n.endswith(".py"))


@pytest.mark.parametrize("dotted", _names_in_docs())
def test_every_dotted_name_in_the_docs_exists(dotted):
    assert _resolve(dotted) is not None


def test_every_setting_the_docs_name_exists():
    from planner import settings

    names = set()
    for path in DOCS:
        names.update(re.findall(r"settings\.([a-z_]+)\b", path.read_text(encoding="utf-8")))
    names.discard("py")
    assert names, "the docs name no settings"
    missing = [n for n in sorted(names) if not hasattr(settings, n)]
    assert not missing


def _script_imports() -> list[tuple[str, str, str]]:
    """(script, module, name) of every ``from planner... import name`` in scripts/."""
    import ast

    found = []
    for path in sorted((ROOT / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "planner":
                found += [(path.name, node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize(("script", "module", "name"), _script_imports())
def test_every_planner_import_of_the_scripts_resolves(script, module, name):
    assert _resolve(f"{module}.{name}") is not None, script


def test_top_level_names():
    import planner

    for name in ("audit", "load_region", "settings", "villages", "InputError", "InfeasibleError"):
        assert hasattr(planner, name) or importlib.import_module(f"planner.{name}")
    assert issubclass(planner.InputError, Exception) and issubclass(planner.InfeasibleError, Exception)


# --------------------------------------------------------------------------------------------
# README: planner audit


def test_readme_audit_from_python(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    from planner import audit, load_region

    region = load_region("sample_regions/nanjing_xinjiekou.osm.pbf")
    result = audit.audit(region, categories="kindergarten,primary_school,market")
    coverage = result.coverage
    assert set(coverage["category"]) == {"kindergarten", "primary_school", "market", "complete_life_circle"}
    assert result.homes.crs.is_projected and len(result.homes) > 0
    out = tmp_path / "nanjing"
    result.write(out)
    assert {"homes.gpkg", "coverage.csv", "summary.json", "map.html"} <= {p.name for p in out.iterdir()}


# --------------------------------------------------------------------------------------------
# README: planner site and planner.optimize


def test_readme_optimize_on_a_cost_matrix():
    from planner.optimize import MaxCoverage, PCenter, PMedian, SetCover, Solution

    cost_s = np.array([[60.0, 900.0, 300.0], [600.0, 120.0, 400.0], [500.0, 700.0, 90.0]])
    solution = PMedian.from_cost_matrix(cost_s, weights=[100, 50, 80], p=2).solve(
        method="auto", time_limit=10
    )
    assert isinstance(solution, Solution)
    # Sites 0 and 2: 100 × 60 + 50 × 400 + 80 × 90 = 33,200 (sites 0 and 1: 52,000; 1 and 2: 43,200).
    assert sorted(solution.sites.tolist()) == [0, 2]
    assert solution.objective == pytest.approx(33200.0) and solution.bound == pytest.approx(33200.0)
    assert solution.gap == pytest.approx(0.0)
    # Within 5 minutes: candidate 0 covers home 0 (100), 1 home 1 (50), 2 homes 2 and 0 (80 + 100).
    assert MaxCoverage.from_cost_matrix(cost_s, [100, 50, 80], p=1, minutes=5).solve().sites.tolist() == [2]
    assert len(SetCover.from_cost_matrix(cost_s, [100, 50, 80], minutes=5).solve().sites) == 2
    assert PCenter.from_cost_matrix(cost_s, [100, 50, 80], p=3).solve().objective == pytest.approx(120.0)


def test_readme_site_from_python(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from planner import load_region
    from planner.siting import run_site, site

    plan = site(load_region("nanjing_xinjiekou"), "elderly_care", model="mclp", new=4, minutes=5)
    summary = plan.summary()
    assert 0 <= summary["gap"] <= 1e-4
    # By the standards (the default) at most 4: here the catchment and capacities allow 3.
    assert 1 <= len(plan.proposed) <= 4
    assert {"rank", "population_newly_covered", "capacity", "people_assigned"} <= set(plan.proposed.columns)
    assert len(plan.before_after) > 0
    run_site("nanjing_xinjiekou", "out/site", "kindergarten", model="lscp")
    assert {"sites.gpkg", "before_after.csv", "summary.json", "map.html"} <= {
        p.name for p in (tmp_path / "out" / "site").iterdir()
    }


# --------------------------------------------------------------------------------------------
# README: planner villages


def test_readme_villages_from_python(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from planner import load_region, villages

    region = load_region("zhejiang_haining_zhouwangmiao")
    result = villages.audit_villages(region)
    assert result.share == 1.0 and len(result.admin) == 2  # README: 2 of 2 = 100 %
    assert result.indicators["indicator"].iloc[0] is not None
    stations = villages.propose_stations(result)
    assert len(stations.sites) == 0  # no station needed
    summary = villages.run_villages("zhejiang_haining_zhouwangmiao", "out/villages")
    assert summary["hamlets"]["hamlets"] == 33 and summary["hamlets"]["within_walk"] == 8
    assert summary["population"] == pytest.approx(4467, abs=0.5)
    assert {"villages.gpkg", "indicators.csv", "summary.json", "map.html"} <= {
        p.name for p in (tmp_path / "out" / "villages").iterdir()
    }


# --------------------------------------------------------------------------------------------
# README: planner review


def test_readme_review_from_python(tmp_path):
    from planner.review import review, run_review

    rev = review(SAMPLES / "plan_fail.geojson", rules=["gb50180-2018", "community-service"], osm=None)
    assert rev.passed is False
    assert set(rev.counts) == {"pass", "fail", "advice", "not_applicable"} and rev.counts["fail"] > 0
    missing = rev.missing_facilities()
    assert isinstance(missing, dict | list)
    records = [r.to_dict() for r in rev.results]
    assert {"rule_id", "status", "strength", "value", "threshold", "unit", "shortfall", "clause"} <= set(
        records[0]
    )
    assert run_review(SAMPLES / "plan_pass.geojson", out_dir=tmp_path / "review") == 0
    assert run_review(SAMPLES / "plan_fail.geojson", out_dir=tmp_path / "review-fail") == 1
    assert {"review.json", "summary.json", "review.html", "review_map.html"} <= {
        p.name for p in (tmp_path / "review").iterdir()
    }


def test_readme_rule_packs_and_categories(tmp_path):
    import planner.categories
    import planner.rules

    assert "gb50180-2018" in planner.rules.list_rulepacks()
    assert planner.rules.load_rulepack("gb50180-2018").id == "gb50180-2018"
    extra = tmp_path / "my.toml"
    extra.write_text(
        '[[category]]\nkey = "bank"\nname_zh = "银行"\nname_en = "Bank"\nminutes = 15\nmatch = [{ amenity = "bank" }]\n',
        encoding="utf-8",
    )
    cats = planner.categories.load_categories(extra)
    assert cats["bank"].name_zh == "银行" and "kindergarten" in cats


def test_readme_settings_from_python():
    from planner import settings

    settings.walk_speed_mps = 1.2
    settings.progress = False
    assert settings.walk_speed_mps == 1.2  # restored by conftest after the test


# --------------------------------------------------------------------------------------------
# README: planner batch (Dask starts worker processes: run as the README's guarded script)


@pytest.mark.slow
def test_readme_batch_from_python(tmp_path):
    regions = tmp_path / "regions.csv"
    regions.write_text(
        f"name,osm\nzwm,{SAMPLES / 'zhejiang_haining_zhouwangmiao.osm.pbf'}\n", encoding="utf-8"
    )
    script = textwrap.dedent(f"""
        import json
        from planner.batch import run_batch

        if __name__ == "__main__":          # Dask starts worker processes: guard scripts like this
            summary = run_batch({str(regions)!r}, out_dir={str(tmp_path / "zj")!r},
                                task_options={{"categories": "kindergarten,clinic,market", "minutes": "5,10,15"}},
                                workers=1, memory_limit="2GiB", progress=False)
            print(json.dumps(summary["regions"]))
    """)
    (tmp_path / "run.py").write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "run.py")], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["total"] == counts["done"] == 1 and counts["failed"] == 0
    assert (tmp_path / "zj" / "regions" / "zwm" / "coverage.csv").exists()
    assert (tmp_path / "zj" / "indicators.csv").exists()
    from planner.batch import cut_min_bytes, dask_sweeper

    assert callable(dask_sweeper) and cut_min_bytes == 64 * 2**20


# --------------------------------------------------------------------------------------------
# notebooks/02_urban_15min (scripts/make_notebooks.py)


def test_urban_notebook_calls():
    import pandas as pd

    from planner import audit, load_region, settings
    from planner.audit import roads_gdf
    from planner.maps import map_audit, offline_html
    from planner.review import review
    from planner.siting import site

    settings.progress = False
    region = load_region("nanjing_xinjiekou")
    assert region.name == "nanjing_xinjiekou" and len(region.node_id) > 0 and len(region.features) > 0
    result = audit.audit(region)
    cov = result.coverage
    at_target = cov[(cov.threshold == "target") & (cov.category != "complete_life_circle")]
    at_target = at_target[
        [
            "name_zh",
            "name_en",
            "target_m",
            "target_minutes",
            "population_share",
            "elderly_share",
            "children_share",
        ]
    ]
    assert len(at_target) > 10
    complete = cov[cov.category == "complete_life_circle"][
        ["level", "homes_share", "population_share", "elderly_share"]
    ]
    assert len(complete) == 3
    summary = result.summary()
    assert isinstance(summary["categories_without_facilities"], list)
    m = map_audit(
        result.homes.to_crs(4326),
        result.facilities.to_crs(4326).assign(geometry=lambda d: d.representative_point()),
        result.isochrones.to_crs(4326),
        [
            {"key": c.key, "name_zh": c.name_zh, "name_en": c.name_en, "minutes": c.minutes}
            for c in result.categories
        ],
        roads=roads_gdf(result.network).to_crs(4326),
        title="南京新街口 Nanjing Xinjiekou",
    )
    assert "<html" in offline_html(m).lower()
    plan = site(region, "elderly_care", model="mclp", new=4, minutes=5)
    s = plan.summary()
    assert {"objective", "upper_bound", "gap", "solver"} <= set(s)
    plan.proposed[["rank", "candidate_id", "source", "population_newly_covered", "homes_newly_covered"]]
    plan.before_after[
        [
            "minutes",
            "population_share_before",
            "population_share_after",
            "elderly_share_before",
            "elderly_share_after",
        ]
    ]
    rv = review(SAMPLES / "plan_fail.geojson")
    table = pd.DataFrame(rv.to_records())
    fails = table[table.status == "fail"][
        ["rule_id", "title_zh", "value", "threshold", "unit", "shortfall", "clause"]
    ]
    assert len(fails) == rv.counts["fail"] > 0


# --------------------------------------------------------------------------------------------
# notebooks/01_village_exploration


def test_village_notebook_calls(tmp_path):
    from planner import load_region, villages
    from planner.settlement import judge_settlement

    region = load_region("zhejiang_haining_zhouwangmiao")
    verdict = judge_settlement(region)
    assert (
        verdict.kind == "rural" and "rural" in verdict.notice and verdict.evidence["village_committees"] == 2
    )
    found = villages.find_villages(region)
    assert len(found) == 33
    found[["village_id", "name", "source", "homes", "homes_estimated", "population"]]
    result = villages.audit_villages(region, villages=found)
    result.admin[
        ["name", "source", "committee", "hamlets", "population", "has_facility", "hamlets_within_walk"]
    ]
    groups = result.villages.groupby("admin_village")["name"].apply(lambda s: "、".join(s.dropna()))
    assert len(groups) == 2
    result.indicators[
        [
            "indicator",
            "unit",
            "name_zh",
            "villages",
            "villages_within_target",
            "share_within_target",
            "target_share",
        ]
    ]
    strict = tmp_path / "centres_only.toml"
    strict.write_text(
        '[[category]]\nkey = "village_service_station"\nname_zh = "党群服务中心"\nname_en = "Party-masses service centre"\n'
        'minutes = 10\nlevel = "village"\nmode = "walk"\nsource = "a county counting dedicated centres only"\n'
        'match = [{ name = "~(党群服务中心|综合服务站)" }]\n',
        encoding="utf-8",
    )
    county = villages.audit_villages(region, villages=found, categories_file=strict)
    assert county.share == 0.0 and len(county.admin) == 2
    plan = villages.propose_stations(county)
    assert len(plan.sites.drop(columns="geometry")) == 2  # one station per administrative village
    assert county.map(plan) is not None


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_docs_resolve():
    anchors = {}
    for path in DOCS:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        anchors[path.resolve()] = {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}
    broken = []
    for path in DOCS:
        for link in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", link):
                continue
            file, _, anchor = link.partition("#")
            target = (path.parent / file).resolve() if file else path.resolve()
            if not target.exists() or (anchor and target in anchors and anchor not in anchors[target]):
                broken.append(f"{path.name}: {link}")
    assert not broken
