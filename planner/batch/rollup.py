"""The batch's roll-up: indicators.csv (population-weighted coverage per region and for the
whole set), the batch map, failures.csv."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner._errors import InputError
from planner._io import (
    atomic_file,
)
from planner.batch.regions import ALL_REGIONS, RegionSpec
from planner.sources import metric_crs_of

# Share bands of the batch map: ≥ 90 %, ≥ 75 %, ≥ 50 %, below (ColorBrewer RdYlGn as in planner.maps).
_SHARE_BANDS = (
    (0.9, "#1a9850", "≥ 90 %"),
    (0.75, "#91cf60", "75–90 %"),
    (0.5, "#fc8d59", "50–75 %"),
    (-1.0, "#d73027", "< 50 %"),
)


def region_indicators(region_dir: str, name: str) -> dict:
    """:func:`indicator_rows` of a region folder written earlier (e.g. before a resume)."""
    folder = Path(region_dir)
    cov = pd.read_csv(folder / "coverage.csv", encoding="utf-8-sig")
    homes = gpd.read_file(folder / "homes.gpkg", layer="homes")
    return indicator_rows(name, cov, homes)


def indicator_rows(name: str, coverage: pd.DataFrame, homes: gpd.GeoDataFrame) -> dict:
    """Counts behind one region's coverage (people within each threshold), and its outline.

    The counts are whole people, as ``coverage.csv`` holds them
    (:func:`planner.audit.coverage_counts`), so a region read back from its folder after a
    resume rolls up to the same numbers as one just run.
    """
    from planner.audit import coverage_counts

    totals = {"homes": float(len(homes)), "population": float(homes["population"].sum())}
    for g in ("elderly", "children", "disabled"):
        totals[g] = float(homes[g].sum()) if g in homes.columns else 0.0
    if "population_within" not in coverage.columns:
        coverage = coverage_counts(coverage, homes)
    rows = []
    for r in coverage.to_dict("records"):
        # Rows per threshold, at each category's own target (minutes empty for a metre
        # target) and of the complete basic life circle per level.
        row = {
            "region": name,
            "category": r["category"],
            "name_zh": r["name_zh"],
            "name_en": r["name_en"],
            "level": r["level"] if isinstance(r.get("level"), str) else "",
            "threshold": r.get("threshold", "minutes"),
            "minutes": float(r["minutes"]),
            "target_m": float(r.get("target_m", np.nan)),
            "target_minutes": float(r["target_minutes"]),
        }
        row["homes"] = int(totals["homes"])
        row["homes_within"] = int(r["homes_within"])
        row["population"] = totals["population"]
        row["population_within"] = float(r["population_within"])
        for g in ("elderly", "children", "disabled"):
            row[g] = totals[g]
            row[f"{g}_within"] = float(r[f"{g}_within"])
        rows.append(row)
    outline = shapely.Point()
    if len(homes):
        # Regions given by their own file: the homes' outline stands for the region on the map.
        metric = metric_crs_of(homes) if homes.crs.is_geographic else homes.crs
        hull = homes.to_crs(metric).geometry.union_all().convex_hull.buffer(settings.grid_spacing_m)
        outline = gpd.GeoSeries([hull], crs=metric).to_crs(4326).iloc[0]
    return {"region": name, "rows": rows, "outline_wkb": shapely.to_wkb(outline)}


def indicators_table(rows_per_region: Iterable[list[dict]]) -> pd.DataFrame:
    """Population-weighted coverage per region, category and threshold, plus the whole set.

    The whole set's shares come from summed counts (Σ people within / Σ people), not from an
    average of the regions' shares, so a large county weighs what its population weighs.

    Returns
    -------
    pandas.DataFrame
        ``region`` (``"(all)"`` for the whole set), ``category``, ``name_zh``, ``name_en``,
        ``level``, ``threshold`` (``minutes`` or ``target``, as in ``coverage.csv``),
        ``minutes``, ``target_m``, ``target_minutes``, ``regions``, then for homes,
        population, elderly, children and disabled: the count, the count within, and the share.
    """
    frame = pd.DataFrame([row for rows in rows_per_region for row in rows])
    groups = ("homes", "population", "elderly", "children", "disabled")
    columns = [
        "region",
        "category",
        "name_zh",
        "name_en",
        "level",
        "threshold",
        "minutes",
        "target_m",
        "target_minutes",
        "regions",
    ]
    for g in groups:
        columns += [g, f"{g}_within", f"{g}_share"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["regions"] = 1
    keys = ["category", "name_zh", "name_en", "level", "threshold", "minutes", "target_m", "target_minutes"]
    whole = frame.groupby(keys, sort=False, as_index=False, dropna=False)[
        ["regions", *groups, *[f"{g}_within" for g in groups]]
    ].sum()
    whole["region"] = ALL_REGIONS
    table = pd.concat([frame, whole], ignore_index=True)
    for g in groups:
        total = table[g].to_numpy(float)
        table[f"{g}_share"] = np.where(
            total > 0, table[f"{g}_within"].to_numpy(float) / np.where(total > 0, total, 1), 0.0
        )
    return table[columns]


def parse_indicator(text: str | None, options: dict) -> tuple[str, int]:
    keys, targets, mins = options["_category_keys"], options["_category_targets"], options["minutes"]
    if not text:
        key = keys[0]
        target = targets[key]
        return key, int(target) if target in mins else max(mins)
    key, _, minute = str(text).partition(":")
    key = key.strip()
    if key not in keys:
        raise InputError(
            f"--map-indicator {text!r}: category {key!r} is not audited; use one of {', '.join(keys)}"
        )
    if not minute.strip():
        # The category's target as minutes when it is a threshold (a metre target is not).
        return key, int(targets[key]) if targets[key] in mins else max(mins)
    try:
        m = int(minute)
    except ValueError:
        raise InputError(f"--map-indicator {text!r}: give category:minutes, e.g. {key}:15") from None
    if m not in mins:
        raise InputError(
            f"--map-indicator {text!r}: {m} min is not among --minutes {','.join(map(str, mins))}"
        )
    return key, m


def default_indicator(table: pd.DataFrame) -> tuple[str, int]:
    first = table.iloc[0]
    mins = table.loc[(table["category"] == first["category"]) & (table["threshold"] == "minutes"), "minutes"]
    target = float(first["target_minutes"])  # NaN for a metre target
    return str(first["category"]), int(target) if (mins == target).any() else int(mins.max())


def batch_map(
    table: pd.DataFrame,
    outlines: dict[str, Any],
    indicator: tuple[str, int],
    path: str | os.PathLike,
    failed: dict[str, Any] | None = None,
) -> Path:
    """Write an offline map of the regions coloured by one indicator's population share.

    Parameters
    ----------
    table : DataFrame
        From :func:`indicators_table`.
    outlines : dict
        Region name → polygon in WGS84.
    indicator : (category, minutes)
    path : path
        The HTML file to write.
    failed : dict, optional
        Failed regions' polygons, drawn grey.
    """
    import folium

    from planner import maps

    key, minutes = indicator
    sel, whole = _indicator_rows(table, key, minutes, outlines)
    gdf = gpd.GeoDataFrame(
        {
            "region": sel["region"].to_numpy(),
            "share": [f"{v:.1%}" for v in sel["population_share"]],
            "population": [f"{v:,.0f}" for v in sel["population"]],
            "homes": sel["homes"].to_numpy(),
        },
        geometry=[outlines[n] for n in sel["region"]],
        crs=4326,
    )
    colours = [_share_colour(v, p) for v, p in zip(sel["population_share"], sel["population"], strict=True)]
    parts = [g for g in [*outlines.values(), *(failed or {}).values()] if g is not None and not g.is_empty]
    bounds = shapely.union_all(parts).bounds if parts else (73.0, 18.0, 135.0, 54.0)
    m = maps.base_map(bounds)
    name_zh = sel["name_zh"].iloc[0] if len(sel) else key
    name_en = sel["name_en"].iloc[0] if len(sel) else key
    maps.add_polygons(
        m,
        gdf,
        colours,
        name=f"{name_zh} ≤{minutes} min",
        tooltip_columns=list(_REGION_ALIASES),
        aliases=_REGION_ALIASES,
        fill_opacity=0.55,
        weight=1.0,
    )
    # Regions a few kilometres across in a set spanning provinces vanish at the zoom that shows
    # them all: a marker and a name keep each one visible and clickable at any zoom.
    maps.add_points(
        m,
        gdf.assign(geometry=gdf.geometry.representative_point()),
        colours,
        radius=8,
        outline="#333333",
        weight=1.0,
        name="区域位置 Region markers",
        tooltip_columns=list(_REGION_ALIASES),
        aliases=_REGION_ALIASES,
    )
    maps.add_labels(m, gdf, "region", name="区域名称 Region names")
    if failed:
        _add_failed(m, failed)
    maps.add_title(
        m, f"{name_zh} {minutes} 分钟覆盖率 — {name_en} within {minutes} min", _whole_subtitle(whole, minutes)
    )
    items = [(c, label, "area") for _, c, label in _SHARE_BANDS] + [
        (maps.NO_FACILITY_COLOUR, "无住宅/失败 no homes / failed", "area")
    ]
    maps.add_legend(m, "人口覆盖率 population share", items)
    folium.LayerControl(collapsed=False).add_to(m)
    return maps.save_map(m, path)


_REGION_ALIASES = {
    "region": "区域 region",
    "share": "人口覆盖率 population share",
    "population": "人口 population",
    "homes": "住宅点 homes",
}


def _indicator_rows(
    table: pd.DataFrame, key: str, minutes: int, outlines: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The indicator's rows per mapped region, and its all-regions row."""
    table = table[table["threshold"] == "minutes"] if "threshold" in table.columns else table
    mine = table[(table["category"] == key) & (table["minutes"] == minutes)]
    sel = mine[(mine["region"] != ALL_REGIONS) & mine["region"].isin(list(outlines))]
    return sel, mine[mine["region"] == ALL_REGIONS]


def _whole_subtitle(whole: pd.DataFrame, minutes: int) -> str | None:
    """The all-regions line under the title, when the table has that row."""
    if not len(whole):
        return None
    w = whole.iloc[0]
    return (
        f"全部 all {int(w['regions'])} regions: {w['population_share']:.1%} of "
        f"{w['population']:,.0f} people within {minutes} min"
    )


def _add_failed(m: Any, failed: dict[str, Any]) -> None:
    """Failed regions' outlines, grey and dashed."""
    from planner import maps

    fg = gpd.GeoDataFrame(
        {"region": list(failed), "status": "failed 失败"}, geometry=list(failed.values()), crs=4326
    )
    maps.add_polygons(
        m,
        fg,
        maps.NO_FACILITY_COLOUR,
        name="失败 failed",
        tooltip_columns=["region", "status"],
        fill_opacity=0.3,
        dash_array="4 4",
    )


def _share_colour(share: float, population: float) -> str:
    from planner.maps import NO_FACILITY_COLOUR

    if not population > 0:
        return NO_FACILITY_COLOUR
    return next(c for lo, c, _ in _SHARE_BANDS if share >= lo)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write an Excel-ready table (:mod:`planner.tables`) atomically."""
    from planner.tables import CSV_ENCODING, excel_ready

    with atomic_file(path, "w", encoding=CSV_ENCODING, newline="") as fh:
        excel_ready(frame).to_csv(fh, index=False)


def gather_indicators(client, results: dict, done_names: list[str], regions_dir: Path) -> list[dict]:
    """:func:`indicator_rows` of every region done, in ``done_names`` order: those this run
    returned, and those done before a resume read from their folders on the cluster."""
    if not done_names:
        return []
    now = {n: results[n].pop("_indicators") for n in done_names if "_indicators" in results.get(n, {})}
    earlier = [n for n in done_names if n not in now]  # done before a resume: read their files
    futures = client.map(
        region_indicators,
        [str(regions_dir / n) for n in earlier],
        earlier,
        pure=False,
        key=[f"indicators-{i}-{uuid.uuid4().hex[:6]}" for i in range(len(earlier))],
    )
    now.update(zip(earlier, client.gather(futures), strict=True))
    return [now[n] for n in done_names]


def write_rollup(
    out: Path,
    specs: list[RegionSpec],
    failures: list[dict],
    errors_log: list[str],
    rolled: list[dict] | None,
    indicator: tuple[str, int] | None,
) -> tuple[str, int] | None:
    """Write ``failures.csv`` (and ``failures.log``), and with ``rolled`` (a task with the audit's
    outputs) ``indicators.csv`` and ``map.html``; remove an earlier run's files this run has not.

    Returns the map's indicator (the default one when none was asked)."""
    write_csv(pd.DataFrame(failures, columns=["region", "osm", "error"]), out / "failures.csv")
    if errors_log:
        with atomic_file(out / "failures.log", "w", encoding="utf-8") as fh:
            fh.write("\n\n".join(errors_log))
    written = {"failures.log"} if errors_log else set()
    if rolled is not None:
        written.add("indicators.csv")
        by_name = {s.name: s for s in specs}
        table = indicators_table([r["rows"] for r in rolled])
        write_csv(table, out / "indicators.csv")
        outlines = {
            r["region"]: (
                by_name[r["region"]].boundary
                if by_name[r["region"]].boundary is not None
                else shapely.from_wkb(r["outline_wkb"])
            )
            for r in rolled
        }
        failed_outlines = {
            f["region"]: by_name[f["region"]].boundary
            for f in failures
            if by_name[f["region"]].boundary is not None
        }
        if len(table):
            indicator = indicator or default_indicator(table)
            batch_map(table, outlines, indicator, out / "map.html", failed=failed_outlines)
            written.add("map.html")
    if settings.excel:
        from planner.tables import write_xlsx

        tables = {"failures": pd.DataFrame(failures, columns=["region", "osm", "error"])}
        if rolled is not None:
            tables = {"indicators": table, **tables}
        with atomic_file(out / "batch.xlsx", "wb") as fh:
            write_xlsx(tables, fh)
        written.add("batch.xlsx")
    for stale in ("failures.log", "indicators.csv", "map.html", "batch.xlsx"):  # earlier runs' files
        if stale not in written:
            (out / stale).unlink(missing_ok=True)
    return indicator
