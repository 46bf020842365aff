"""Hand-made estate plans and rule packs for the review tests.

Plans are written in tmp_path in EPSG:32650 (UTM 50N, metres) so distances and areas are
exact; the samples in sample_regions/ are lon/lat.
"""

from __future__ import annotations

import json
from pathlib import Path

from shapely import affinity
from shapely.geometry import Point, box, mapping

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_regions"
FACTS = ROOT.parent / "shared" / "standards" / "life_circle_facts.md"
# Origin of the test plans: UTM 50N, near 117°E 31.6°N.
X0, Y0 = 500_000.0, 3_500_000.0


def to_utm(g):
    """Shift a geometry drawn in local metres to the UTM origin."""
    return affinity.translate(g, X0, Y0)


def write_plan(path: Path, features: list[tuple[dict, object]], crs: int | None = 32650) -> Path:
    """A GeoJSON plan: (properties, geometry in local metres) per feature."""
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": props,
                "geometry": mapping(to_utm(g)) if g is not None else None,
            }
            for props, g in features
        ],
    }
    if crs is not None:
        fc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{crs}"}}
    path.write_text(json.dumps(fc), encoding="utf-8")
    return path


def estate(households=1000, geom=None, **props) -> tuple[dict, object]:
    return {"role": "estate", "households": households, **props}, geom or box(0, 0, 200, 200)


def facility(category, floor, geom=None, **props) -> tuple[dict, object]:
    return {"role": "facility", "category": category, "floor_area_m2": floor, **props}, geom or Point(
        100, 100
    )


def write_pack(path: Path, rules: str, pack_id: str = "test-pack") -> Path:
    path.write_text(
        f'[pack]\nid = "{pack_id}"\ntitle_zh = "测试"\ntitle_en = "Test"\nsource = "test"\n\n{rules}',
        encoding="utf-8",
    )
    return path


RADIUS_RULE = """
[[rule]]
id = "t.kindergarten.radius"
title_zh = "幼儿园300m"
title_en = "Kindergarten within 300 m"
clause = "test"
confirmed = true
strength = "mandatory"
measure = "service_radius_share"
category = "kindergarten"
threshold = 300
unit = "m"
"""


def result(rev, rule_id):
    return next(r for r in rev.results if r.rule.id == rule_id)
