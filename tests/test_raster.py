"""Population rasters: reading, summing to polygons and points, cells as points, surfaces."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.warp
import shapely
from affine import Affine

from planner._errors import InputError
from planner.raster import (
    PopulationRaster,
    cells_as_points,
    read_population,
    sum_to_points,
    sum_to_polygons,
)
from planner.surface import write_surface

SHARED_RASTER = (
    Path(__file__).resolve().parents[1].parent / "shared" / "rasters" / "guangzhou_worldpop_1km_utm49n.tif"
)

# A 4 x 5 grid of 100 m cells in UTM 50N (near Shenzhen); cell (r, c) holds 10 * (5r + c + 1),
# so every cell is distinguishable, and cell (1, 1) is nodata.
UTM = "EPSG:32650"
CELL_M = 100.0
LEFT, TOP = 800_000.0, 2_500_000.0
NODATA = -9999.0
NODATA_RC = (1, 1)


def _grid_values() -> np.ndarray:
    values = 10.0 * (np.arange(20, dtype="float64").reshape(4, 5) + 1)
    return values


def _cell_box(row0: int, col0: int, rows: float = 1, cols: float = 1) -> shapely.Polygon:
    """Box over cells starting at (row0, col0), ``rows`` x ``cols`` cells (fractions allowed)."""
    x0 = LEFT + col0 * CELL_M
    y1 = TOP - row0 * CELL_M
    return shapely.box(x0, y1 - rows * CELL_M, x0 + cols * CELL_M, y1)


def _cell_centre(row: int, col: int) -> tuple[float, float]:
    return LEFT + (col + 0.5) * CELL_M, TOP - (row + 0.5) * CELL_M


@pytest.fixture
def pop_tif(tmp_path: Path) -> Path:
    values = _grid_values().astype("float32")
    values[NODATA_RC] = NODATA
    path = tmp_path / "pop.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=5,
        height=4,
        count=1,
        dtype="float32",
        crs=UTM,
        transform=Affine(CELL_M, 0, LEFT, 0, -CELL_M, TOP),
        nodata=NODATA,
    ) as dst:
        dst.write(values, 1)
    return path


def _valid_total() -> float:
    values = _grid_values()
    return float(values.sum() - values[NODATA_RC])


# --- reading ---------------------------------------------------------------------------------


def test_read_population_nodata_is_nan(pop_tif: Path) -> None:
    pop = read_population(pop_tif)
    assert pop.values.dtype == np.float64
    assert pop.shape == (4, 5)
    assert np.isnan(pop.values[NODATA_RC])
    assert pop.values[0, 0] == 10.0 and pop.values[3, 4] == 200.0
    assert pop.nodata == NODATA
    assert pop.crs.to_epsg() == 32650
    assert pop.cell_area == pytest.approx(CELL_M * CELL_M)
    assert pop.valid.sum() == 19
    assert pop.total == pytest.approx(_valid_total())


def test_read_population_within_reads_a_window(pop_tif: Path) -> None:
    area = gpd.GeoSeries([_cell_box(0, 0, 1, 1)], crs=UTM)
    pop = read_population(pop_tif, within=area)
    # One cell of margin around the single cell, clipped at the raster's edge.
    assert pop.shape == (2, 2)
    assert pop.values[0, 0] == 10.0
    # Cell ids stay those of the whole file.
    cells = cells_as_points(pop)
    assert sorted(cells["cell_id"]) == [0, 1, 5]  # (1, 1) = id 6 is nodata


# --- polygons -----------------------------------------------------------------------------------


def test_polygon_covering_2x3_cells_sums_them(pop_tif: Path) -> None:
    values = _grid_values()
    polygons = gpd.GeoDataFrame(geometry=[_cell_box(2, 1, rows=2, cols=3)], crs=UTM)
    expected = values[2:4, 1:4].sum()  # no nodata in rows 2-3
    assert sum_to_polygons(pop_tif, polygons) == pytest.approx([expected], rel=1e-12)
    assert sum_to_polygons(pop_tif, polygons, method="centre") == pytest.approx([expected], rel=1e-12)


def test_polygon_with_nodata_cell_skips_it(pop_tif: Path) -> None:
    values = _grid_values()
    polygons = gpd.GeoDataFrame(geometry=[_cell_box(0, 0, rows=2, cols=3)], crs=UTM)
    expected = values[0:2, 0:3].sum() - values[NODATA_RC]
    assert sum_to_polygons(pop_tif, polygons)[0] == pytest.approx(expected, rel=1e-12)


def test_half_cell_gives_half(pop_tif: Path) -> None:
    values = _grid_values()
    polygons = gpd.GeoDataFrame(
        geometry=[
            _cell_box(0, 2, rows=1, cols=0.5),  # left half of (0, 2)
            _cell_box(3, 0, rows=0.5, cols=2),  # top halves of (3, 0) and (3, 1)
            shapely.Point(_cell_centre(2, 2)).buffer(10.0, quad_segs=64),  # a tiny compound
        ],
        crs=UTM,
    )
    sums = sum_to_polygons(pop_tif, polygons)
    tiny_frac = polygons.geometry.iloc[2].area / CELL_M**2
    assert sums == pytest.approx(
        [values[0, 2] / 2, (values[3, 0] + values[3, 1]) / 2, values[2, 2] * tiny_frac], rel=1e-9
    )
    # The centre rule counts whole cells by their centres instead (the tiny circle holds one).
    centre = sum_to_polygons(pop_tif, polygons, method="centre")
    assert centre[2] == pytest.approx(values[2, 2])


def test_polygons_in_wgs84_match_utm(pop_tif: Path) -> None:
    values = _grid_values()
    utm = gpd.GeoDataFrame(
        {"name": ["block", "half", "outside-part"]},
        geometry=[
            _cell_box(2, 1, rows=2, cols=3),
            _cell_box(0, 2, rows=1, cols=0.5),
            _cell_box(-1, 3, rows=2, cols=5),  # row 0, cols 3-4 are in the raster; the rest is off it
        ],
        crs=UTM,
    )
    wgs84 = utm.to_crs("EPSG:4326")
    expected = [values[2:4, 1:4].sum(), values[0, 2] / 2, values[0, 3] + values[0, 4]]
    assert sum_to_polygons(pop_tif, wgs84) == pytest.approx(expected, rel=1e-6)
    assert sum_to_polygons(read_population(pop_tif), wgs84) == pytest.approx(expected, rel=1e-6)


def test_missing_geometry_gets_zero_and_whole_raster_gets_total(pop_tif: Path) -> None:
    pop = read_population(pop_tif)
    polygons = gpd.GeoSeries([shapely.box(*pop.bounds), None], crs=UTM)
    assert sum_to_polygons(pop, polygons) == pytest.approx([_valid_total(), 0.0])


def test_polygons_nowhere_near_raise(pop_tif: Path) -> None:
    # Coordinates in UTM labelled WGS84: a classic mix-up, reported instead of returning 0.
    wrong = gpd.GeoSeries([shapely.box(10, 10, 20, 20)], crs="EPSG:4326")
    with pytest.raises(InputError, match=re.escape("pop.tif")):
        sum_to_polygons(read_population(pop_tif), wrong)


def test_points_given_to_sum_to_polygons_raise(pop_tif: Path) -> None:
    with pytest.raises(InputError, match="sum_to_points"):
        sum_to_polygons(pop_tif, gpd.GeoSeries([shapely.Point(_cell_centre(0, 0))], crs=UTM))


def test_area_fractions_match_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    """Edge-cell fractions equal box-by-box shapely intersection over the whole grid."""
    import planner.raster as raster_module

    rng = np.random.default_rng(7)
    transform = Affine(30.0, 0, 500_000.0, 0, -30.0, 2_500_000.0)
    values = rng.random((60, 80)) * 100
    pop = PopulationRaster(values, transform, rasterio.crs.CRS.from_epsg(32650), None)
    rows, cols = np.indices(values.shape)
    x0, y1 = transform.c + 30.0 * cols, transform.f - 30.0 * rows
    boxes = shapely.box(x0, y1 - 30.0, x0 + 30.0, y1)
    polygons = []
    for k in range(20):
        centre = rng.uniform([500_000, 2_498_200], [502_400, 2_500_000])
        angles, radii = np.sort(rng.uniform(0, 2 * np.pi, 12)), rng.uniform(5, 900, 12)
        polygon = shapely.Polygon(
            np.c_[centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)]
        )
        if k % 3 == 0:  # a hole
            polygon = polygon.difference(shapely.Point(centre).buffer(radii.min() / 2))
        if k % 5 == 0:  # a detached part
            polygon = polygon.union(
                shapely.box(centre[0] + 1000, centre[1], centre[0] + 1090, centre[1] + 60)
            )
        polygons.append(polygon)
    polygons = gpd.GeoSeries(polygons, crs=32650)
    exact = [(shapely.area(shapely.intersection(boxes, p)) / 900.0 * values).sum() for p in polygons]
    # Small windows (shapely only), large windows (GDAL rasterize) and row strips for detailed
    # boundaries must all agree with the brute force.
    for small_window_cells, detailed_vertices in [(4096, 500), (0, 500), (0, 3), (10**9, 3)]:
        monkeypatch.setattr(raster_module, "_SMALL_WINDOW_CELLS", small_window_cells)
        monkeypatch.setattr(raster_module, "_DETAILED_VERTICES", detailed_vertices)
        assert sum_to_polygons(pop, polygons) == pytest.approx(exact, rel=1e-9)


def test_raster_in_degrees(tmp_path: Path) -> None:
    """A WGS84 raster (as WorldPop ships): distances are still metres, fractions still right."""
    path = tmp_path / "wgs84.tif"
    left, top, step = 113.20, 23.20, 0.01  # cells about 1.02 km wide and 1.11 km tall
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=3,
        height=3,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(step, 0, left, 0, -step, top),
        nodata=0,
    ) as dst:
        dst.write(np.arange(1, 10, dtype="float32").reshape(3, 3) * 100, 1)
    centre = gpd.GeoSeries([shapely.Point(left + 1.5 * step, top - 1.5 * step)], crs=4326).to_crs(UTM)
    # Only its own cell lies within 500 m (neighbouring centres are about 1 km away).
    people, unallocated = sum_to_points(path, centre, max_distance_m=500.0, return_unallocated=True)
    assert people == pytest.approx([500.0])
    assert unallocated == pytest.approx(4500.0 - 500.0)
    assert sum_to_points(path, centre) == pytest.approx([4500.0])
    # The western half of the middle column, drawn in degrees and given in UTM.
    half = gpd.GeoSeries([shapely.box(left + step, top - 3 * step, left + 1.5 * step, top)], crs=4326)
    assert sum_to_polygons(path, half.to_crs(UTM)) == pytest.approx([(200 + 500 + 800) / 2], rel=1e-6)
    cells = cells_as_points(path, crs=UTM)
    assert len(cells) == 9 and cells.crs.to_epsg() == 32650


# --- points -------------------------------------------------------------------------------------


def test_nearest_allocation_is_voronoi_and_conserves(pop_tif: Path) -> None:
    values = _grid_values()
    values[NODATA_RC] = 0.0
    # A at the centre of (1, 0), B at the centre of (1, 3): columns 0-1 are nearer A, 2-4 nearer B.
    points = gpd.GeoDataFrame(
        geometry=[shapely.Point(_cell_centre(1, 0)), shapely.Point(_cell_centre(1, 3))], crs=UTM
    ).to_crs("EPSG:4326")
    people = sum_to_points(pop_tif, points, method="nearest")
    assert people == pytest.approx([values[:, 0:2].sum(), values[:, 2:5].sum()], rel=1e-9)
    assert people.sum() == pytest.approx(_valid_total(), rel=1e-12)


def test_share_splits_a_cell_among_its_points(pop_tif: Path) -> None:
    x, y = _cell_centre(0, 0)
    homes = gpd.GeoDataFrame(
        {"units": [1.0, 3.0, 4.0]},
        geometry=[shapely.Point(x - 20, y), shapely.Point(x + 20, y), shapely.Point(_cell_centre(3, 4))],
        crs=UTM,
    )
    # Within 10 m no cell centre is near a home, so only the cells holding homes are given out:
    # the two homes in (0, 0) share its 10 people equally, the third takes (3, 4) whole.
    people, unallocated = sum_to_points(pop_tif, homes, max_distance_m=10.0, return_unallocated=True)
    assert people == pytest.approx([5.0, 5.0, 200.0])
    assert unallocated == pytest.approx(_valid_total() - 210.0)
    weighted = sum_to_points(pop_tif, homes, weights="units", max_distance_m=10.0)
    assert weighted == pytest.approx([2.5, 7.5, 200.0])
    # Without a limit the other cells go to their nearest home and nothing is lost.
    people, unallocated = sum_to_points(pop_tif, homes, return_unallocated=True)
    assert unallocated == 0.0
    assert people.sum() == pytest.approx(_valid_total(), rel=1e-12)
    assert sum_to_points(pop_tif, homes, weights="units").sum() == pytest.approx(_valid_total(), rel=1e-12)
    # With "nearest" one home takes the whole cell and its twin nothing.
    nearest = sum_to_points(pop_tif, homes, method="nearest", max_distance_m=25.0)
    assert sorted(nearest[:2]) == pytest.approx([0.0, 10.0])


def test_max_distance_reports_unallocated(pop_tif: Path) -> None:
    values = _grid_values()
    point = gpd.GeoSeries([shapely.Point(_cell_centre(0, 0))], crs=UTM)
    # Within 150 m of the centre of (0, 0): its own cell and (0, 1), (1, 0), (1, 1)=nodata.
    people, unallocated = sum_to_points(
        read_population(pop_tif), point, max_distance_m=150.0, return_unallocated=True
    )
    reached = values[0, 0] + values[0, 1] + values[1, 0]
    assert people == pytest.approx([reached])
    assert unallocated == pytest.approx(_valid_total() - reached)


def test_zero_weight_points_get_nothing(pop_tif: Path) -> None:
    points = gpd.GeoSeries([shapely.Point(_cell_centre(0, 0)), shapely.Point(_cell_centre(3, 4))], crs=UTM)
    people = sum_to_points(pop_tif, points, weights=np.array([0.0, 1.0]))
    assert people == pytest.approx([0.0, _valid_total()])


# --- cells as points ---------------------------------------------------------------------------


def test_cells_as_points_count_and_sum(pop_tif: Path) -> None:
    cells = cells_as_points(pop_tif)
    assert list(cells.columns) == ["cell_id", "population", "geometry"]
    assert len(cells) == 19
    assert cells["population"].sum() == pytest.approx(_valid_total())
    first = cells.set_index("cell_id").loc[0]
    assert (first.geometry.x, first.geometry.y) == pytest.approx(_cell_centre(0, 0))
    assert 6 not in set(cells["cell_id"])  # (1, 1) is nodata


def test_cells_as_points_clipped_and_reprojected(pop_tif: Path) -> None:
    boundary = gpd.GeoDataFrame(geometry=[_cell_box(0, 0, rows=2, cols=2.5)], crs=UTM).to_crs("EPSG:4326")
    cells = cells_as_points(pop_tif, boundary=boundary, crs="EPSG:4326")
    assert cells.crs.to_epsg() == 4326
    # (0,0), (0,1), (1,0) whole, (0,2), (1,2) half; (1,1) nodata.
    assert len(cells) == 5
    assert cells["population"].sum() == pytest.approx(sum_to_polygons(pop_tif, boundary)[0], rel=1e-9)
    assert cells.set_index("cell_id").loc[2, "population"] == pytest.approx(30.0 / 2, rel=1e-6)
    centre = cells_as_points(pop_tif, boundary=boundary, method="centre")
    assert sorted(centre["cell_id"]) == [0, 1, 5]  # half-covered cells' centres are on the edge or out


# --- surfaces ---------------------------------------------------------------------------------


def test_write_surface_min_round_trip(tmp_path: Path) -> None:
    # Three nodes in one 100 m cell and one in another; one unreachable (inf) node.
    xy = np.array([[1010.0, 2010.0], [1050.0, 2090.0], [1099.0, 2001.0], [1210.0, 2010.0], [1310.0, 2010.0]])
    seconds = np.array([300.0, 120.0, 240.0, 60.0, np.inf])
    path = write_surface(tmp_path / "out" / "time.tif", seconds, xy, crs=UTM, cell_size_m=100.0, how="min")
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32650
        assert src.dtypes[0] == "float32"
        assert np.isnan(src.nodata)
        assert src.compression.value.lower() == "deflate"
        assert src.res == (100.0, 100.0)
        grid = src.read(1)
        assert src.tags(1)["units"] == "s"
        row, col = src.index(1050.0, 2050.0)
        assert grid[row, col] == 120.0
        row, col = src.index(1250.0, 2050.0)
        assert grid[row, col] == 60.0
        assert np.count_nonzero(np.isfinite(grid)) == 2
        # Aligned to multiples of the cell size.
        assert src.transform.c % 100.0 == 0 and src.transform.f % 100.0 == 0
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temporary file left behind


def test_write_surface_nearest_from_wgs84_nodes(tmp_path: Path) -> None:
    nodes_utm = gpd.GeoSeries([shapely.Point(800_050, 2_500_050), shapely.Point(800_450, 2_500_050)], crs=UTM)
    nodes = gpd.GeoDataFrame({"t": [100.0, 500.0]}, geometry=nodes_utm.to_crs("EPSG:4326").values, crs=4326)
    path = write_surface(
        tmp_path / "t.tif",
        nodes["t"].to_numpy(),
        nodes,
        crs=UTM,
        cell_size_m=100.0,
        max_distance_m=120.0,
        offnetwork_speed_mps=1.0,
    )
    with rasterio.open(path) as src:
        grid = src.read(1)
        assert src.crs.to_epsg() == 32650

        def at(x: float, y: float) -> float:
            return float(grid[src.index(x, y)])

        # The node's own cell reads its time; the next cell adds 100 m at 1 m/s.
        assert at(800_050, 2_500_050) == pytest.approx(100.0, abs=1e-3)
        assert at(800_150, 2_500_050) == pytest.approx(200.0, abs=1e-3)
        assert at(800_350, 2_500_050) == pytest.approx(600.0, abs=1e-3)
        # Cell (800_250, ...) is 200 m from both nodes: beyond 120 m, so nodata.
        assert np.isnan(at(800_250, 2_500_050))
        # Diagonal neighbour: 141 m away, beyond 120 m.
        assert np.isnan(at(800_150, 2_500_150))


def test_write_surface_on_population_grid(pop_tif: Path, tmp_path: Path) -> None:
    nodes = np.array([_cell_centre(0, 0), _cell_centre(3, 4)])
    path = write_surface(tmp_path / "t.tif", [10.0, 20.0], nodes, crs=UTM, like=pop_tif, max_distance_m=None)
    with rasterio.open(path) as src, rasterio.open(pop_tif) as pop:
        assert src.transform == pop.transform and src.shape == pop.shape
        grid = src.read(1)
    assert grid[0, 0] == 10.0 and grid[3, 4] == 20.0 and np.isfinite(grid).all()


def test_write_surface_refuses_degrees(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="metric CRS"):
        write_surface(tmp_path / "t.tif", [1.0], np.array([[113.3, 23.1]]), crs="EPSG:4326")
    with pytest.raises(InputError, match="one value per point"):
        write_surface(tmp_path / "t.tif", [1.0, 2.0], np.array([[0.0, 0.0]]), crs=UTM)
    assert not (tmp_path / "t.tif").exists()


# --- bad inputs --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere\.tif: no such file"):
        read_population(tmp_path / "nowhere.tif")


def test_text_file_named_tif(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tif"
    fake.write_text("population,100\n")
    with pytest.raises(InputError, match=r"fake\.tif: not a raster"):
        read_population(fake)
    with pytest.raises(InputError, match=r"fake\.tif"):
        sum_to_polygons(fake, gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs=UTM))


def test_raster_without_crs(tmp_path: Path) -> None:
    path = tmp_path / "nocrs.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=2,
        height=2,
        count=1,
        dtype="float32",
        transform=Affine(100, 0, 0, 0, -100, 200),
    ) as dst:
        dst.write(np.ones((2, 2), dtype="float32"), 1)
    with pytest.raises(InputError, match=r"nocrs\.tif: no CRS; set one with gdal_edit\.py -a_srs"):
        read_population(path)


def test_polygons_without_crs(pop_tif: Path) -> None:
    with pytest.raises(InputError, match="no CRS"):
        sum_to_polygons(pop_tif, gpd.GeoSeries([_cell_box(0, 0)]))


# --- the real WorldPop raster of Guangzhou -------------------------------------------------------


@pytest.fixture(scope="module")
def guangzhou() -> PopulationRaster:
    if not SHARED_RASTER.exists():
        pytest.skip("needs ../shared/rasters (WorldPop Guangzhou); absent in this clone")
    return read_population(SHARED_RASTER)


GUANGZHOU_CELLS = 7_155
GUANGZHOU_PEOPLE = 16_812_464


@pytest.mark.shared
def test_guangzhou_totals(guangzhou: PopulationRaster) -> None:
    assert guangzhou.crs.to_epsg() == 32649
    assert guangzhou.shape == (154, 112)
    assert int(guangzhou.valid.sum()) == GUANGZHOU_CELLS
    assert guangzhou.total == pytest.approx(GUANGZHOU_PEOPLE, rel=1e-5)
    assert np.nanmax(guangzhou.values) == pytest.approx(139_870, rel=1e-5)


@pytest.mark.shared
def test_guangzhou_bounds_in_wgs84_sum_to_total(guangzhou: PopulationRaster) -> None:
    west, south, east, north = rasterio.warp.transform_bounds(guangzhou.crs, "EPSG:4326", *guangzhou.bounds)
    area = gpd.GeoDataFrame(geometry=[shapely.box(west, south, east, north)], crs="EPSG:4326")
    assert sum_to_polygons(SHARED_RASTER, area)[0] == pytest.approx(GUANGZHOU_PEOPLE, rel=1e-5)


@pytest.mark.shared
def test_guangzhou_cells_and_points(guangzhou: PopulationRaster) -> None:
    cells = cells_as_points(SHARED_RASTER, crs="EPSG:4326")
    assert len(cells) == GUANGZHOU_CELLS
    assert cells["population"].sum() == pytest.approx(GUANGZHOU_PEOPLE, rel=1e-5)
    assert cells["cell_id"].is_unique
    # Four "district centres" in WGS84 take everyone between them.
    centres = gpd.GeoSeries.from_xy([113.26, 113.38, 113.60, 113.25], [23.13, 23.12, 23.55, 22.90], crs=4326)
    people = sum_to_points(guangzhou, centres, method="nearest")
    assert people.sum() == pytest.approx(GUANGZHOU_PEOPLE, rel=1e-5)
    assert (people > 0).all()
    # The core (Yuexiu/Liwan, first point) is denser than the northern outskirts (third).
    yuexiu = gpd.GeoSeries([shapely.Point(113.27, 23.13).buffer(0.02)], crs=4326)
    assert sum_to_polygons(guangzhou, yuexiu)[0] > 100_000
