"""One ``planner serve`` session: the engine, the scenario folder, and what the API returns.

Everything here is plain Python returning JSON-ready dicts; :mod:`planner.serve.app` only
maps it to HTTP. Edits and scenario changes hold one lock, so two browser tabs never
interleave half edits.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from planner._errors import InputError
from planner.categories import resolve_key
from planner.serve.engine import Engine
from planner.serve.state import ScenarioFolder, check_name

#: Name of the unsaved scenario being edited, in comparisons.
CURRENT = "(current)"
#: Settings a scenario must share with the session to be loaded into it.
_MATCHED = ("region", "categories", "minutes", "mode")


class Session:
    """The engine of one region and the folder its scenarios are saved in.

    Parameters
    ----------
    engine : Engine
    folder : path
        Where scenarios are saved (``<name>.geojson``) and exported (``<name>-audit/``).
    inputs : dict, optional
        The files the session was started with (recorded in saved scenarios).
    """

    def __init__(self, engine: Engine, folder: str | os.PathLike, inputs: dict | None = None):
        self.engine = engine
        self.folder = ScenarioFolder(folder)
        self.inputs = dict(inputs or {})
        self.name: str | None = None
        self.lock = threading.RLock()
        self._facility_cache: tuple = (None, [])
        self._to_wgs = Transformer.from_crs(engine.region.crs, 4326, always_xy=True)

    @property
    def settings(self) -> dict:
        e = self.engine
        return {
            "region": e.region.name,
            "categories": [c.key for c in e.categories],
            "minutes": list(e.minutes),
            "mode": e.mode,
            **self.inputs,
        }

    # --------------------------------------------------------------------------------------
    # reading

    def state(self) -> dict:
        """Everything the page draws: categories, homes, facilities, roads, compounds, the
        edits and the tables."""
        from planner.audit import roads_gdf
        from planner.maps.base import time_legend_items

        e = self.engine
        with self.lock:
            homes = e.homes.to_crs(4326)
            xy = shapely.get_coordinates(shapely.point_on_surface(homes.geometry.to_numpy()))
            roads = roads_gdf(e.net).to_crs(4326)
            seg = shapely.get_coordinates(roads.geometry.to_numpy()).reshape(-1, 4)
            comps = e.comps.to_crs(4326) if len(e.comps) else e.comps
            bounds = e.region.bounds_wgs84
            return {
                "region": e.region.name,
                "scenario": self.name,
                "minutes": list(e.minutes),
                "legend": [{"colour": c, "label": label} for c, label in time_legend_items(e.minutes)],
                "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
                "categories": [
                    {
                        "key": c.key,
                        "name_zh": c.name_zh,
                        "name_en": c.name_en,
                        "level": c.level,
                        "basic": c.basic,
                        "target": c.target_label,
                        "minutes": c.minutes,
                    }
                    for c in e.categories
                ],
                "homes": {
                    "lon": np.round(xy[:, 0], 6).tolist(),
                    "lat": np.round(xy[:, 1], 6).tolist(),
                    "home_id": homes["home_id"].astype(str).tolist(),
                    "compound_id": [None if v is None else str(v) for v in homes["compound_id"]],
                    "population": _floats(homes["population"], 1),
                },
                "roads": np.round(seg, 6).ravel().tolist(),
                "compounds": [
                    {
                        "compound_id": str(cid),
                        "name": None if _missing(name) else str(name),
                        "outline": [np.round(shapely.get_coordinates(r), 6).tolist() for r in _rings(g)],
                    }
                    for cid, name, g in zip(comps["compound_id"], comps["name"], comps.geometry, strict=True)
                ]
                if len(comps)
                else [],
                "facilities": self._facilities(),
                "edits": self.edits(),
                "scenarios": self.folder.names(),
                **self._tables(),
            }

    def _facilities(self) -> list[dict]:
        """The scenario's facilities for the page (kept until a facility edit changes them)."""
        e = self.engine
        key = e.facility_version
        if self._facility_cache[0] != key:
            self._facility_cache = (key, self._facility_list())
        return self._facility_cache[1]

    def _facility_list(self, keys: Sequence[str] | None = None) -> list[dict]:
        """Facilities of the categories ``keys`` (all when None): id, category, name, lon/lat."""
        fac = self.engine.current_facilities()
        if keys is not None:
            fac = fac[fac["category"].isin(list(keys))]
        pts = shapely.point_on_surface(fac.geometry.to_numpy())
        lon, lat = self._to_wgs.transform(shapely.get_x(pts), shapely.get_y(pts))
        names = [None if _missing(n) else str(n) for n in fac["name"].tolist()]
        return [
            {"facility_id": fid, "category": cat, "name": name, "lon": x, "lat": y}
            for fid, cat, name, x, y in zip(
                fac["facility_id"].astype(str).tolist(),
                fac["category"].astype(str).tolist(),
                names,
                np.round(np.asarray(lon, float), 6).tolist(),
                np.round(np.asarray(lat, float), 6).tolist(),
                strict=True,
            )
        ]

    def edits(self) -> list[dict]:
        return [{k: v for k, v in e.items() if not k.startswith("_")} for e in self.engine.edits]

    def _tables(self) -> dict:
        from planner.life_circle import coverage_counts

        e = self.engine
        table = coverage_counts(e.coverage, e.homes)
        return {"coverage": _records(table), "totals": _totals(e.homes)}

    def times(self, category: str) -> dict:
        """Per home: time to the category's nearest facility (s; None when none within the
        sweep), whether that is because it is beyond the sweep or has no path at all
        (``reach``), and whether it is within the category's target."""
        e = self.engine
        with self.lock:
            key = resolve_key(category, e.by_key, "category")
            return {
                "category": key,
                "time_s": _floats(e.homes[f"{key}_time_s"], 1),
                "reach": [str(v) for v in e.homes[f"{key}_reach"]],
                "within_target": e.homes[f"{key}_within_target"].astype(bool).tolist(),
            }

    def isochrone(self, category: str) -> dict:
        """The category's target circle as a GeoJSON FeatureCollection (WGS84)."""
        from planner.serve.export import target_isochrone

        e = self.engine
        with self.lock:
            key = resolve_key(category, e.by_key, "category")
            iso = target_isochrone(e, key)
            if iso is None or len(iso) == 0:
                return {"type": "FeatureCollection", "features": []}
            iso = iso.assign(geometry=iso.geometry.simplify(2.0)).to_crs(4326)
            return {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"category": key}, "geometry": g.__geo_interface__}
                    for g in iso.geometry
                ],
            }

    # --------------------------------------------------------------------------------------
    # edits

    def edit(self, raw: dict) -> dict:
        with self.lock:
            done = self.engine.apply(raw)
            out = {"edit": {k: v for k, v in done.items() if not k.startswith("_")}, "edits": self.edits()}
            if done["kind"] in ("add_facility", "move_facility", "delete_facility"):
                # Only the edited categories: a city has tens of thousands of facilities.
                out["facilities_of"] = {k: self._facility_list([k]) for k in done["changed"]}
            return {**out, **self._tables()}

    def undo(self) -> dict:
        with self.lock:
            last = self.engine.undo()
            undone = last and {k: v for k, v in last.items() if not k.startswith("_")}
            return {"undone": undone, **self._after()}

    def _after(self) -> dict:
        return {"facilities": self._facilities(), "edits": self.edits(), **self._tables()}

    # --------------------------------------------------------------------------------------
    # scenarios

    def save(self, name: str) -> dict:
        with self.lock:
            path = self.folder.save(name, self.settings, self.edits())
            self.name = check_name(name)
            return {"saved": self.name, "path": str(path), "scenarios": self.folder.names()}

    def load(self, name: str) -> dict:
        with self.lock:
            edits = self._scenario_edits(name)
            self._replay(edits)
            self.name = check_name(name)
            return {"loaded": self.name, **self._after()}

    def _scenario_edits(self, name: str) -> list[dict]:
        if name == CURRENT:
            return self.edits()
        settings, edits = self.folder.load(name)
        mine = self.settings
        for key in _MATCHED:
            if key in settings and settings[key] != mine[key]:
                raise InputError(
                    f"scenario {name!r}: made with {key} {settings[key]!r}, this session has {mine[key]!r}; "
                    "start planner serve with the same inputs to use it"
                )
        return edits

    def _replay(self, edits: Sequence[dict]) -> None:
        """Rebuild the scenario from ``edits``; on a refused edit the current one stays."""
        current = self.edits()
        try:
            self.engine.reset(edits)
        except BaseException:
            self.engine.reset(current)
            raise

    def compare(self, a: str, b: str) -> dict:
        """People and elderly newly within each target in ``b`` compared with ``a`` (scenario
        names, or :data:`CURRENT` for the edits not saved yet), and those no longer within."""
        with self.lock:
            current = self.edits()
            plans = {a: self._scenario_edits(a), b: self._scenario_edits(b)}
            snaps = {}
            try:
                for name, edits in plans.items():
                    self.engine.reset(edits)
                    e = self.engine
                    snaps[name] = (
                        e.within(),
                        e.homes["population"].to_numpy(float),
                        e.homes["elderly"].to_numpy(float),
                    )
            finally:
                self.engine.reset(current)
            return {"a": a, "b": b, "rows": _differences(self.engine, snaps[a], snaps[b])}

    def export(self, name: str) -> dict:
        """The scenario ``name`` (or the current one) written as an audit's outputs in
        ``<folder>/<name>-audit``: homes.gpkg, coverage.csv, summary.json, map.html..."""
        from planner.serve.export import audit_result

        with self.lock:
            label = check_name(self.name or "current") if name == CURRENT else check_name(name)
            current = self.edits()
            try:
                if name != CURRENT:
                    self.engine.reset(self._scenario_edits(name))
                result = audit_result(self.engine, label)
            finally:
                if name != CURRENT:
                    self.engine.reset(current)
            out = self.folder.folder / f"{label}-audit"
            result.write(out)
            return {"exported": label, "path": str(Path(out))}

    def propose(self, category: str, new: int, standards: bool = True, model: str = "mclp") -> dict:
        """Sites for ``new`` facilities of ``category`` on the current scenario, as edits:
        ``planner site`` by the standards (default: land big enough, minimum catchment and
        spacing), or the pure ``model`` (``standards=False``, ``--no-standards``). ``lines``:
        the siting's own summary, which says why when nothing is proposed."""
        from planner.siting import site
        from planner.tradeoff import console_lines

        if isinstance(new, bool) or not isinstance(new, int) or not 1 <= new <= 20:
            raise InputError(f"propose: 'new' {str(new)[:20]!r} must be a whole number of sites from 1 to 20")
        if not isinstance(standards, bool):
            raise InputError(f"propose: 'standards' {str(standards)[:20]!r} must be true or false")
        if model not in PROPOSE_MODELS:
            raise InputError(f"propose: 'model' {str(model)[:20]!r}: use one of {', '.join(PROPOSE_MODELS)}")
        e = self.engine
        with self.lock:
            key = resolve_key(category, e.by_key, "propose: 'category'")
            region, extra, homes = e.scenario_inputs()
            result = site(
                region,
                key,
                model=model,
                new=new,
                homes=homes,
                extra_facilities=extra,
                mode=e.mode,
                network=e.net,
                standards=standards,
            )
            sites = result.proposed.to_crs(4326)
            xy = shapely.get_coordinates(shapely.point_on_surface(sites.geometry.to_numpy()))
            lines = [line.strip() for line in console_lines(result)]
            proposals = [
                {
                    "edit": {
                        "kind": "add_facility",
                        "category": key,
                        "lon": round(float(x), 7),
                        "lat": round(float(y), 7),
                        "name": f"proposed {int(rank)}",
                    },
                    "population_newly_covered": _num(row.get("population_newly_covered")),
                }
                for (x, y), rank, (_, row) in zip(xy, sites["rank"], sites.iterrows(), strict=True)
            ]
            out = {"category": key, "model": model, "standards": standards, "proposals": proposals}
            out["lines"] = lines
            if not proposals:
                out["why"] = _why_none(lines, standards)
            return out


#: The models ``propose`` offers (``lscp`` chooses its own number of sites).
PROPOSE_MODELS = ("mclp", "pmedian", "pcenter")


def _why_none(lines: list[str], standards: bool) -> str:
    """Why the siting proposed no site: its own words, else that no candidate improves on
    the current facilities."""
    said = [line for line in lines if "nothing proposed" in line or "beyond every candidate" in line]
    if said:
        return "; ".join(said) + (" (try the pure model: standards off)" if standards else "")
    return "no candidate site improves on the current facilities"


def _differences(e: Engine, a: tuple, b: tuple) -> list[dict]:
    within_a, pop_a, old_a = a
    within_b, pop_b, old_b = b
    names = {c.key: (c.name_zh, c.name_en, c.target_label) for c in e.categories}
    rows = []
    for key, (in_b, in_b_old) in within_b.items():
        in_a, in_a_old = within_a[key]
        zh, en, target = names.get(key, ("完整基本生活圈", f"Complete basic life circle {key[9:]}", ""))
        rows.append(
            {
                "key": key,
                "name_zh": zh,
                "name_en": en,
                "target": target,
                "population_within_a": _num(pop_a[in_a].sum()),
                "population_within_b": _num(pop_b[in_b].sum()),
                "people_newly_within": _num(pop_b[in_b & ~in_a].sum()),
                "people_no_longer_within": _num(pop_a[in_a & ~in_b].sum()),
                "elderly_newly_within": _num(old_b[in_b_old & ~in_a_old].sum()),
                "elderly_no_longer_within": _num(old_a[in_a_old & ~in_b_old].sum()),
            }
        )
    return rows


def _totals(homes: pd.DataFrame) -> dict:
    return {
        "homes": len(homes),
        **{g: _num(homes[g].sum()) for g in ("population", "elderly", "children", "disabled") if g in homes},
    }


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _json_value(v):
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _num(v)
    return None if _missing(v) else v


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None


def _floats(series, digits: int) -> list:
    values = np.round(series.to_numpy(float), digits)
    return [None if not math.isfinite(v) else float(v) for v in values.tolist()]


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _rings(geom) -> list:
    polys = getattr(geom, "geoms", [geom])
    return [p.exterior for p in polys if hasattr(p, "exterior")]
