"""Shared data and checks of the batch tests."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_regions"
SHARED = ROOT.parent / "shared"
REAL = [
    "beijing_haidian_cau",
    "nanjing_xinjiekou",
    "beijing_chaoyang_wangjing",
    "shenzhen_longgang",
    "beijing_haidian_wudaokou",
    "zhejiang_haining_zhouwangmiao",
]
FEW = "kindergarten,primary_school,clinic,market,park"  # a quicker audit where the test is about the batch


def regions_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def assert_same_region(single: Path, batched: Path) -> None:
    """What the single-region command wrote equals what the batch wrote (timings aside)."""
    for layer in ("homes", "facilities", "isochrones"):
        a = gpd.read_file(single / f"{layer}.gpkg", layer=layer)
        b = gpd.read_file(batched / f"{layer}.gpkg", layer=layer)
        pd.testing.assert_frame_equal(
            pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry"))
        )
        assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all(), layer
    assert (single / "coverage.csv").read_bytes() == (batched / "coverage.csv").read_bytes()
    sa = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    sb = json.loads((batched / "summary.json").read_text(encoding="utf-8"))
    sa.pop("seconds"), sb.pop("seconds")
    # "osm" is the path as given: the batch gives the regions file's path resolved, the
    # command the user's spelling; the file itself (osm_path) must be the same.
    for s in (sa, sb):
        if isinstance(s.get("inputs"), dict):
            s["inputs"].pop("osm", None)
    assert sa == sb
    assert (single / "map.html").exists() == (batched / "map.html").exists()


def finished(out: Path) -> dict[str, float]:
    """Region folder → mtime of its summary.json; and no half-written folder may be visible."""
    regions = out / "regions"
    visible = [p for p in regions.iterdir() if not p.name.startswith(".")]
    assert all((p / "summary.json").exists() for p in visible), "a region folder without summary.json"
    return {p.name: (p / "summary.json").stat().st_mtime_ns for p in visible}


def same_files(single: Path, batched: Path, layers: dict[str, list[str]], csvs: list[str]) -> None:
    for name, names in layers.items():
        for layer in names:
            a, b = gpd.read_file(single / name, layer=layer), gpd.read_file(batched / name, layer=layer)
            pd.testing.assert_frame_equal(
                pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry"))
            )
            assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all(), (name, layer)
    for name in csvs:
        assert (single / name).read_bytes() == (batched / name).read_bytes(), name
    sa = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    sb = json.loads((batched / "summary.json").read_text(encoding="utf-8"))
    assert without_timings(sa) == without_timings(sb)


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "seconds"}
    return [without_timings(v) for v in value] if isinstance(value, list) else value
