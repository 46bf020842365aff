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


def test_wkt_boundaries_in_the_crs_given(tmp_path):
    """--crs declares a CSV's wkt boundaries: UTM 50N metres come out as the same square in WGS84."""
    from pyproj import Transformer

    from planner.batch.regions import read_regions

    (tmp_path / "x.osm.pbf").write_bytes(b"")
    square = "POLYGON((440000 4420000, 441000 4420000, 441000 4421000, 440000 4421000, 440000 4420000))"
    (tmp_path / "r.csv").write_text(f'name,osm,wkt\na,x.osm.pbf,"{square}"\n', encoding="utf-8")
    (spec,) = read_regions(tmp_path / "r.csv", crs="EPSG:32650")
    lon, lat = Transformer.from_crs(32650, 4326, always_xy=True).transform(440000, 4420000)
    assert spec.boundary.exterior.coords[0] == pytest.approx((lon, lat), abs=1e-9)
    assert spec.boundary.bounds[2] < 117 and spec.boundary.bounds[3] < 40  # degrees, not metres
    assert spec.error is None
    (unread,) = read_regions(tmp_path / "r.csv")  # without --crs the metres are not lon/lat
    assert "not longitude/latitude" in unread.error
