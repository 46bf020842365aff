"""Helpers of the planner serve tests: independent audits and coordinates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from planner.audit import audit
from planner.serve.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "sample_regions/beijing_haidian_cau.osm.pbf"


def full_audit(region, **kw):
    """A full audit, as independent of the engine as the inputs allow."""
    return audit(region, with_isochrones=False, progress=False, **kw)


def without(region, *facility_ids):
    """The region with the OSM features of these facility ids left out."""
    feats = region.features
    return dataclasses.replace(region, features=feats[~feats["osm_id"].isin(facility_ids)])


def assert_same_numbers(engine: Engine, result) -> None:
    """Coverage table, and every home's times, distances and verdicts, equal to the audit's."""
    pd.testing.assert_frame_equal(engine.coverage, result.coverage, check_exact=False, rtol=1e-9, atol=1e-9)
    cols = [c for c in result.homes.columns if c.endswith(("_time_s", "_dist_m", "_within_target", "_reach"))]
    cols += [c for c in result.homes.columns if c.startswith("complete_")]
    cols += ["population", "elderly", "children", "disabled"]
    assert len(cols) > 50
    pd.testing.assert_frame_equal(
        engine.homes[cols].reset_index(drop=True),
        result.homes[cols].reset_index(drop=True),
        check_exact=False,
        rtol=1e-9,
        atol=1e-9,
    )


def metric_xy(engine: Engine, lon: float, lat: float) -> tuple[float, float]:
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, engine.region.crs, always_xy=True).transform(lon, lat)
    return float(x), float(y)


def lonlat(engine: Engine, x: float, y: float) -> tuple[float, float]:
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(engine.region.crs, 4326, always_xy=True).transform(x, y)
    return float(lon), float(lat)


def population_share(coverage: pd.DataFrame, key: str) -> float:
    row = coverage[(coverage["category"] == key) & (coverage["threshold"] == "target")]
    return float(row["population_share"].iloc[0])


def times(frame: pd.DataFrame, key: str) -> np.ndarray:
    return np.nan_to_num(frame[f"{key}_time_s"].to_numpy(float), nan=np.inf)
