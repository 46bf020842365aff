"""Chinese map coordinates: GCJ-02 (Gaode/Amap, Tencent) and BD-09 (Baidu) to and from WGS84.

GCJ-02 is WGS84 shifted by a published, non-linear offset (300–600 m in Beijing); BD-09 is a
further shift of GCJ-02. pyproj has neither (they are no datum, only an obfuscation), so
they are computed here with numpy, vectorised over arrays:

* WGS84 → GCJ-02 and GCJ-02 → BD-09 are the closed formulas every converter uses (the
  Krasovsky-ellipsoid form of wandergis/coordtransform and googollee/eviltransform);
* GCJ-02 → WGS84 and BD-09 → GCJ-02 invert them by fixed-point iteration until the
  forward formula gives back the input within 1e-9° (0.1 mm), so a round trip is exact
  to well under a metre (the one-step inverse many tools use is off by up to ~1 m).

Outside China the offset is not applied (identity), with the bounding-box test of
wandergis/coordtransform: longitude 73.66–135.05° E, latitude 3.86–53.55° N. The box is a
rectangle: it also covers parts of neighbouring countries, where Gaode/Baidu exports do not
come from in practice.
"""

from __future__ import annotations

import math

import numpy as np

from planner._errors import InputError

__all__ = [
    "COORDS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_coords",
    "frame_for_output",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "geometries_from_wgs84",
    "geometries_to_wgs84",
    "in_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

#: Coordinate systems of lon/lat the converters know.
COORDS = ("wgs84", "gcj02", "bd09")

_A = 6378245.0  # Krasovsky 1940 semi-major axis (m), as in the GCJ-02 formula
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0  # BD-09's angular factor
_TOL_DEG = 1e-9
_MAX_ITER = 30


def check_coords(name: str | None, option: str = "--coords") -> str:
    """The lower-case name of a coordinate system (``wgs84``, ``gcj02`` or ``bd09``).

    Raises
    ------
    InputError
        For any other name.
    """
    text = "wgs84" if name is None else str(name).strip().lower().replace("-", "").replace("_", "")
    if text not in COORDS:
        raise InputError(f"{option} {name!r}: use wgs84, gcj02 (Gaode/Amap, Tencent) or bd09 (Baidu)")
    return text


def in_china(lon, lat) -> np.ndarray:
    """True where a point is inside China's bounding box (the offset applies only there)."""
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    return (lon >= 73.66) & (lon <= 135.05) & (lat >= 3.86) & (lat <= 53.55)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS84 at WGS84 (lon, lat), in degrees."""
    x, y = lon - 105.0, lat - 35.0
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + common
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _arrays(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → GCJ-02 (degrees; arrays or scalars; identity outside China)."""
    lon, lat = _arrays(lon, lat)
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj02_to_bd09_raw(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → BD-09 (degrees; identity outside China)."""
    lon, lat = _arrays(lon, lat)
    bx, by = _gcj02_to_bd09_raw(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, bx, lon), np.where(inside, by, lat)


def _invert(forward, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The point p with forward(p) == (lon, lat), by p <- p - (forward(p) - target).

    The forward maps are a translation plus a small, slowly varying term, so the iteration
    contracts fast (a few steps reach 1e-9°).
    """
    x, y = lon.copy(), lat.copy()
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        ex, ey = fx - lon, fy - lat
        x, y = x - ex, y - ey
        if np.nanmax(np.abs(np.concatenate([np.ravel(ex), np.ravel(ey)])), initial=0.0) < _TOL_DEG:
            break
    return x, y


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → WGS84 by iteration (round trip within 1e-9°; identity outside China)."""
    lon, lat = _arrays(lon, lat)
    x, y = _invert(wgs84_to_gcj02, lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, x, lon), np.where(inside, y, lat)


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → GCJ-02 by iteration (identity outside China)."""
    lon, lat = _arrays(lon, lat)
    x, y = _invert(_gcj02_to_bd09_raw, lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, x, lon), np.where(inside, y, lat)


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → WGS84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon, lat, coords: str) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat given in ``coords`` (``wgs84``, ``gcj02`` or ``bd09``) as WGS84."""
    coords = check_coords(coords)
    if coords == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if coords == "bd09":
        return bd09_to_wgs84(lon, lat)
    return _arrays(lon, lat)


def from_wgs84(lon, lat, coords: str) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat as ``coords`` (``wgs84``, ``gcj02`` or ``bd09``)."""
    coords = check_coords(coords, "--out-coords")
    if coords == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if coords == "bd09":
        return wgs84_to_bd09(lon, lat)
    return _arrays(lon, lat)


def _transform(geoms, func) -> np.ndarray:
    import shapely

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = func(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), apply)


def geometries_to_wgs84(geoms, coords: str) -> np.ndarray:
    """Shapely geometries whose lon/lat are in ``coords``, with every vertex in WGS84."""
    coords = check_coords(coords)
    return _transform(geoms, lambda x, y: to_wgs84(x, y, coords))


def geometries_from_wgs84(geoms, coords: str) -> np.ndarray:
    """Shapely geometries in WGS84 lon/lat, with every vertex in ``coords``."""
    coords = check_coords(coords, "--out-coords")
    return _transform(geoms, lambda x, y: from_wgs84(x, y, coords))


def frame_for_output(frame, coords: str | None):
    """A GeoDataFrame in WGS84 (EPSG:4326) as written to a file, its lon/lat in ``coords``.

    With ``gcj02`` or ``bd09`` the vertices are shifted and the file still declares EPSG:4326,
    as Gaode/Baidu tools expect of their own lon/lat; ``None`` or ``wgs84`` changes nothing
    but the CRS. Columns ``lon``/``lat`` (or ``lng``), when present, follow the geometry's
    conversion.
    """
    coords = check_coords(coords, "--out-coords")
    out = frame.to_crs(4326)
    if coords == "wgs84":
        return out
    out = out.set_geometry(geometries_from_wgs84(out.geometry.to_numpy(), coords), crs=4326)
    lon = next((c for c in ("lon", "lng") if c in out.columns), None)
    if lon is not None and "lat" in out.columns:
        x, y = from_wgs84(out[lon].to_numpy(float), out["lat"].to_numpy(float), coords)
        out[lon], out["lat"] = x, y
    return out
