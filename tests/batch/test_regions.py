"""planner.batch.regions: the regions file."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from planner import batch
from planner._errors import InputError

from .helpers import (
    SAMPLES,
    regions_csv,
)


def test_regions_file_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no 'name' column"):
        batch.read_regions(regions_csv(tmp_path / "a.csv", [{"region": "x", "osm": "x.osm"}]))
    with pytest.raises(InputError, match="appears twice"):
        batch.read_regions(
            regions_csv(tmp_path / "b.csv", [{"name": "x", "osm": "a.osm"}, {"name": "x", "osm": "b.osm"}])
        )
    with pytest.raises(InputError, match="no osm file"):
        batch.read_regions(
            regions_csv(tmp_path / "c.csv", [{"name": "x", "wkt": "POLYGON((0 0,1 0,1 1,0 0))"}])
        )
    with pytest.raises(InputError, match="not found"):
        batch.read_regions(tmp_path / "none.csv")
    with pytest.raises(InputError, match="unknown category"):
        batch.run_batch(tmp_path / "none.csv", out_dir=tmp_path / "o", task_options={"categories": "nope"})
    with pytest.raises(InputError, match="not among --minutes"):
        batch.parse_indicator("park:20", batch.check_options("audit", {}))
    # A bad row fails alone, with its reason.
    specs = batch.read_regions(
        regions_csv(
            tmp_path / "d.csv",
            [
                {"name": "ok", "wkt": "POLYGON((118 32,119 32,119 33,118 32))"},
                {"name": "bad", "wkt": "POLYGON((118 32,119"},
                {"name": "bowtie", "wkt": "POLYGON((118 32,119 33,119 32,118 33,118 32))"},
            ],
        ),
        osm=SAMPLES / "nanjing_xinjiekou.osm.pbf",
    )
    assert [s.error is None for s in specs] == [True, False, False]
    assert "not a readable polygon" in specs[1].error and "invalid" in specs[2].error
    assert specs[0].osm == str((SAMPLES / "nanjing_xinjiekou.osm.pbf").resolve())
    # GeoPackage boundaries in any CRS come out in WGS84; osm paths are relative to the file.
    gdf = gpd.GeoDataFrame(
        {"name": ["a"], "osm": ["sub/a.osm.pbf"]}, geometry=[shapely.box(118.7, 32.0, 118.8, 32.1)], crs=4326
    ).to_crs(32650)
    gdf.to_file(tmp_path / "r.gpkg")
    (spec,) = batch.read_regions(tmp_path / "r.gpkg")
    assert spec.osm == str(tmp_path / "sub" / "a.osm.pbf")
    assert shapely.equals_exact(
        spec.boundary.normalize(), shapely.box(118.7, 32.0, 118.8, 32.1).normalize(), 1e-7
    )
