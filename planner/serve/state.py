"""Scenario edits and scenario files of ``planner serve``.

An edit is a plain dict in WGS84 lon/lat with a ``kind`` (see :data:`EDIT_KINDS`); a scenario
is a named list of edits plus the settings of the session it was made in, saved as a GeoJSON
FeatureCollection (one feature per edit, in order) so any GIS opens it. :func:`check_edit`
checks the shape of an edit sent by the page or read from a file; the engine then checks it
against the region (a facility that exists, a point near the streets).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from planner._errors import InputError
from planner._io import write_json

#: Edit kinds and the keys each needs (besides ``kind``).
EDIT_KINDS: dict[str, tuple[str, ...]] = {
    "add_facility": ("category", "lon", "lat"),
    "move_facility": ("facility_id", "lon", "lat"),
    "delete_facility": ("facility_id",),
    "add_path": ("coordinates",),
    "close_path": ("lon", "lat"),
    "add_gate": ("lon", "lat"),
    "set_population": ("population",),
}
#: Optional keys per kind (anything else is refused, so a typo is not silently ignored).
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "add_facility": ("name", "facility_id"),
    "move_facility": ("category",),
    "delete_facility": ("category",),
    "add_path": ("name", "nodes", "length_m"),
    "close_path": ("nodes",),
    "add_gate": ("compound_ids",),
    "set_population": ("home_id", "compound_id"),
}
FORMAT = "planner-scenario/1"
#: Scenario names: letters (any script), digits, '-', '_' and '.', not starting with '.'.
_NAME = re.compile(r"^(?!\.)[\w\-.]{1,64}$")
_MAX_TEXT = 200
_MAX_PATH_POINTS = 1000


def check_name(name: Any) -> str:
    """A scenario name usable as a file name, or InputError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name.strip()):
        raise InputError(
            f"scenario name {str(name)[:80]!r}: use 1 to 64 letters, digits, '-', '_' or '.', "
            "e.g. clinic-north (no spaces or slashes)"
        )
    return name.strip()


def check_edit(raw: Any) -> dict:
    """The edit, checked for shape and normalised (numbers as floats, text stripped).

    Raises
    ------
    InputError
        One line naming the edit and the key at fault.
    """
    if not isinstance(raw, dict):
        raise InputError('edit: give a JSON object with a \'kind\', e.g. {"kind": "add_facility", ...}')
    kind = raw.get("kind")
    if kind not in EDIT_KINDS:
        raise InputError(f"edit kind {str(kind)[:40]!r}: use one of {', '.join(EDIT_KINDS)}")
    where = f"edit {kind}"
    allowed = {"kind", *EDIT_KINDS[kind], *_OPTIONAL[kind]}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed - {"kind"}))
        raise InputError(f"{where}: unknown key {unknown[0][:40]!r}; use {known}")
    for key in EDIT_KINDS[kind]:
        if raw.get(key) is None:
            raise InputError(f"{where}: {key!r} is missing")
    out: dict[str, Any] = {"kind": kind}
    for key, value in raw.items():
        if key == "kind" or value is None:
            continue
        if key in ("lon", "lat", "population", "length_m"):
            out[key] = _number(value, f"{where}: {key!r}")
        elif key in ("category", "facility_id", "name", "home_id", "compound_id"):
            out[key] = _text(value, f"{where}: {key!r}")
        elif key == "coordinates":
            out[key] = _line(value, where)
        elif key == "nodes":
            out[key] = _id_pairs(value, where)
        elif key == "compound_ids":
            if not isinstance(value, list):
                raise InputError(f"{where}: 'compound_ids' must be a list of compound ids")
            out[key] = [_text(v, f"{where}: 'compound_ids'") for v in value]
    if "lon" in out:
        _check_lonlat(out["lon"], out["lat"], where)
    if kind == "set_population":
        if ("home_id" in out) == ("compound_id" in out):
            raise InputError(f"{where}: give exactly one of 'home_id' or 'compound_id'")
        if out["population"] < 0:
            raise InputError(f"{where}: 'population' {out['population']:g} must be 0 or more people")
    return out


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{what}: {str(value)[:40]!r} must be a finite number")
    return float(value)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InputError(f"{what}: must be text")
    text = str(value).strip()
    if not text or len(text) > _MAX_TEXT or any(ord(ch) < 32 for ch in text):
        raise InputError(f"{what}: give 1 to {_MAX_TEXT} characters of text on one line")
    return text


def _check_lonlat(lon: float, lat: float, where: str) -> None:
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"{where}: lon/lat ({lon:g}, {lat:g}) is not a WGS84 longitude and latitude")


def _line(value: Any, where: str) -> list[list[float]]:
    ok = isinstance(value, list) and 2 <= len(value) <= _MAX_PATH_POINTS
    ok = ok and all(isinstance(p, list) and len(p) == 2 for p in value)
    if not ok:
        raise InputError(
            f"{where}: 'coordinates' must be 2 to {_MAX_PATH_POINTS} [lon, lat] pairs along the path"
        )
    what = f"{where}: 'coordinates'"
    line = [[_number(p[0], what), _number(p[1], what)] for p in value]
    for lon, lat in line:
        _check_lonlat(lon, lat, where)
    return line


def _id_pairs(value: Any, where: str) -> list[str]:
    if not (isinstance(value, list) and len(value) == 2):
        raise InputError(f"{where}: 'nodes' must be the two OSM node ids the path joins")
    return [_text(v, f"{where}: 'nodes'") for v in value]


# ------------------------------------------------------------------------------------------
# scenario files


def scenario_geojson(name: str, settings: dict, edits: list[dict]) -> dict:
    """The scenario as a GeoJSON FeatureCollection: one feature per edit, in order."""
    return {
        "type": "FeatureCollection",
        "planner_scenario": {"format": FORMAT, "name": name, "settings": settings},
        "features": [_feature(e) for e in edits],
    }


def _feature(edit: dict) -> dict:
    props = {k: v for k, v in edit.items() if k not in ("lon", "lat", "coordinates")}
    if "coordinates" in edit:
        geom = {"type": "LineString", "coordinates": edit["coordinates"]}
    elif "lon" in edit:
        geom = {"type": "Point", "coordinates": [edit["lon"], edit["lat"]]}
    else:
        geom = None
    return {"type": "Feature", "geometry": geom, "properties": props}


def edits_from_geojson(data: Any, source: str) -> tuple[dict, list[dict]]:
    """(settings, edits) of a scenario file's contents, each edit checked (:func:`check_edit`)."""
    head = data.get("planner_scenario") if isinstance(data, dict) else None
    features = data.get("features") if isinstance(data, dict) else None
    if not (isinstance(head, dict) and head.get("format") == FORMAT and isinstance(features, list)):
        raise InputError(f"{source}: not a planner scenario ({FORMAT}); save scenarios from planner serve")
    edits = []
    for i, feat in enumerate(data["features"]):
        if not isinstance(feat, dict) or not isinstance(feat.get("properties"), dict):
            raise InputError(f"{source}: feature {i}: no properties; the file was edited by hand?")
        edit = dict(feat["properties"])
        geom = feat.get("geometry") or {}
        if geom.get("type") == "Point":
            edit["lon"], edit["lat"] = (geom.get("coordinates") or [None, None])[:2]
        elif geom.get("type") == "LineString":
            edit["coordinates"] = geom.get("coordinates")
        try:
            edits.append(check_edit(edit))
        except InputError as err:
            raise InputError(f"{source}: feature {i}: {err}") from None
    settings = head.get("settings") if isinstance(head.get("settings"), dict) else {}
    return settings, edits


class ScenarioFolder:
    """The folder where a session's scenarios are saved (``<name>.geojson``)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}.geojson"

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.geojson") if _NAME.fullmatch(p.stem))

    def save(self, name: str, settings: dict, edits: list[dict]) -> Path:
        """Write the scenario atomically (a reader never sees half a file)."""
        path = self.path(name)
        try:
            return write_json(path, scenario_geojson(check_name(name), settings, edits))
        except OSError as err:
            raise InputError(
                f"--scenarios {self.folder}: cannot write {path.name} ({err.strerror})"
            ) from None

    def load(self, name: str) -> tuple[dict, list[dict]]:
        path = self.path(name)
        if not path.is_file():
            raise InputError(
                f"scenario {name!r}: no file {path.name} in {self.folder}; saved ones: "
                + (", ".join(self.names()) or "none")
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"{path}: not a readable UTF-8 GeoJSON file ({err})") from None
        return edits_from_geojson(data, str(path))
