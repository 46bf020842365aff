"""Results in a planner's units, and the curve of how many new sites are worth it.

:func:`planner_units` states a siting's outcome as people and elderly within the target and
mean and 90th-percentile walk minutes, before and after; :func:`add_newly_served` gives each
proposed site the people and elderly it newly serves and the homes it takes over.
``planner site --new 1-12`` solves each number of sites (:func:`parse_new_range`,
:func:`tradeoff_table`) and writes ``tradeoff.csv`` and the chart (:func:`write_chart`, PNG;
:func:`add_chart` puts it in the map), so a planner sees where the curve flattens.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import branca.element
import geopandas as gpd
import numpy as np
import pandas as pd

from planner._errors import InputError

#: Largest range ``--new`` takes: each number of sites is a solve of its own.
MAX_RANGE = 50
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_new_range(text: str | int | None) -> list[int] | None:
    """``"1-12"`` → ``[1, ..., 12]``; ``"3"`` or 3 → ``[3]``; None → None.

    Raises
    ------
    InputError
        Not a whole number or a range ``a-b`` with 1 ≤ a ≤ b, or more than :data:`MAX_RANGE`.
    """
    if text is None:
        return None
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        text = str(int(text))
    found = _RANGE.match(str(text))
    if not found:
        raise InputError(f"--new {text!r}: give a number of new sites (e.g. 3) or a range (e.g. 1-12)")
    a = int(found.group(1))
    b = int(found.group(2)) if found.group(2) else a
    if a < 1 or b < a or b - a + 1 > MAX_RANGE:
        raise InputError(
            f"--new {text!r}: a range a-b needs 1 ≤ a ≤ b and at most {MAX_RANGE} values, e.g. 1-12"
        )
    return list(range(a, b + 1))


def planner_units(homes: pd.DataFrame, minutes: float, elderly_time_factor: float = 1.0) -> dict:
    """People and elderly within ``minutes`` and walk minutes, before and after.

    The elderly are counted at their own pace (times × ``elderly_time_factor``), as the audit
    does; walk minutes are population-weighted over homes with a time (homes beyond the
    routing limit are counted apart, ``people_without_time_*``).
    """
    out: dict = {"minutes": float(minutes)}
    pop = homes["population"].to_numpy(float)
    eld = homes["elderly"].to_numpy(float)
    limit = 60.0 * minutes
    for when in ("before", "after"):
        t = homes[f"time_{when}_s"].to_numpy(float)
        has = np.isfinite(t)
        tt = np.where(has, t, np.inf)
        out[f"people_within_target_{when}"] = float(pop[tt <= limit].sum())
        out[f"elderly_within_target_{when}"] = float(eld[tt * elderly_time_factor <= limit].sum())
        out[f"mean_walk_min_{when}"] = (
            _round(np.average(t[has], weights=pop[has]) / 60) if pop[has].sum() > 0 else None
        )
        out[f"p90_walk_min_{when}"] = (
            _round(weighted_quantile(t[has], pop[has], 0.9) / 60) if pop[has].sum() > 0 else None
        )
        out[f"people_without_time_{when}"] = float(pop[~has].sum())
    out["people"] = float(pop.sum())
    out["elderly"] = float(eld.sum())
    return out


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value with at least ``q`` of the weight at or below it."""
    v = np.asarray(values, float)
    w = np.asarray(weights, float)
    if len(v) == 0 or w.sum() <= 0:
        return float("nan")
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cum, q * cum[-1] - 1e-9 * cum[-1])])


def add_newly_served(
    proposed: gpd.GeoDataFrame,
    homes: pd.DataFrame,
    served_by: np.ndarray,
    minutes: float,
    elderly_time_factor: float = 1.0,
) -> gpd.GeoDataFrame:
    """Per proposed site (rank order; ``served_by``: the site index serving each home after,
    -1 for none or an existing one): ``elderly_newly_covered`` (at their pace) and
    ``homes_taken_over`` (ids of the homes newly within the target that it serves, ``;``-joined)."""
    limit = 60.0 * minutes
    before = np.nan_to_num(homes["time_before_s"].to_numpy(float), nan=np.inf)
    after = np.nan_to_num(homes["time_after_s"].to_numpy(float), nan=np.inf)
    newly = (after <= limit) & ~(before <= limit)
    eld_newly = (after * elderly_time_factor <= limit) & ~(before * elderly_time_factor <= limit)
    eld = homes["elderly"].to_numpy(float)
    ids = homes["home_id"].astype(str).to_numpy()
    out = proposed.copy()
    out["elderly_newly_covered"] = [float(eld[eld_newly & (served_by == i)].sum()) for i in range(len(out))]
    out["homes_taken_over"] = [";".join(ids[newly & (served_by == i)]) for i in range(len(out))]
    return out


def tradeoff_row(result) -> dict:
    """One row of ``tradeoff.csv`` from a :class:`planner.siting.SitingResult`."""
    units = result.report["planner_units"]
    prop = result.proposed
    return {
        "new_sites_allowed": int(result.counts.get("new_sites_allowed", len(prop))),
        "new_sites": len(prop),
        "people_within_target": units["people_within_target_after"],
        "people_newly_within_target": units["people_within_target_after"]
        - units["people_within_target_before"],
        "elderly_within_target": units["elderly_within_target_after"],
        "elderly_newly_within_target": units["elderly_within_target_after"]
        - units["elderly_within_target_before"],
        "mean_walk_min": units["mean_walk_min_after"],
        "p90_walk_min": units["p90_walk_min_after"],
        "objective": float(result.solution.objective),
        "gap": float(result.solution.gap),
        "status": result.solution.status,
        "sites": ";".join(str(c) for c in prop["candidate_id"]),
    }


def solve_range(run_one, news: list[int]):
    """Run ``run_one(p)`` (a :class:`planner.siting.SitingResult` for ``p`` new sites) for
    each ``p`` of ``news``; the last result, with ``tradeoff`` (:func:`tradeoff_table`)."""
    runs = []
    for p in news:
        runs.append(run_one(p))
        runs[-1].counts["new_sites_allowed"] = p
    result = runs[-1]
    result.tradeoff = tradeoff_table(runs)
    return result


def tradeoff_table(results: list) -> pd.DataFrame:
    """``tradeoff.csv``: one row per number of new sites allowed, from the runs' results."""
    return pd.DataFrame([tradeoff_row(r) for r in results])


def write_chart(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """The trade-off chart as PNG: people and elderly newly within the target (left axis)
    and mean walk minutes (right axis) against the number of new sites."""
    Path(path).write_bytes(chart_png(table, title))
    return Path(path)


def chart_png(table: pd.DataFrame, title: str = "") -> bytes:
    """The chart of :func:`write_chart`, as PNG bytes (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    cjk = [f.name for f in font_manager.fontManager.ttflist if "CJK" in f.name or "WenQuanYi" in f.name]
    with matplotlib.rc_context({"font.family": [*cjk[:1], "DejaVu Sans"], "axes.unicode_minus": False}):
        fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
        x = table["new_sites_allowed"].to_numpy()
        ax.plot(
            x,
            table["people_newly_within_target"],
            "o-",
            color="#2c7bb6",
            label="新增覆盖人口 People newly within",
        )
        ax.plot(
            x,
            table["elderly_newly_within_target"],
            "s-",
            color="#7b3294",
            label="新增覆盖老人 Elderly newly within",
        )
        ax.set_xlabel("新设施数 New sites")
        ax.set_ylabel("人 People")
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
        right = ax.twinx()
        right.plot(x, table["mean_walk_min"], "^--", color="#d7301f", label="平均步行分钟 Mean walk min")
        right.set_ylabel("分钟 Minutes")
        lines = ax.get_lines() + right.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], loc="center right", fontsize=8)
        if title:
            ax.set_title(title, fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
    return buf.getvalue()


class _ChartBox(branca.element.MacroElement):
    """The chart over the map, bottom left (an image of PNG bytes: no data as markup)."""

    _template = branca.element.Template(
        """
        {% macro html(this, kwargs) %}
        <div class="planner-box planner-tradeoff"
             style="position: fixed; z-index: 1000; bottom: 20px; left: 10px;
             background: rgba(255,255,255,0.95); border: 1px solid #bbb; border-radius: 6px; padding: 6px;">
        <img class="planner-tradeoff-chart" alt="trade-off chart" style="width: 380px; display: block;"
             src="data:image/png;base64,{{ this.png_b64 }}"></div>
        {% endmacro %}
        """
    )

    def __init__(self, png: bytes):
        super().__init__()
        self._name = "PlannerTradeoff"
        self.png_b64 = base64.b64encode(png).decode("ascii")


def add_chart(m, png: bytes) -> None:
    """Put the trade-off chart (PNG bytes) on a folium map."""
    m.get_root().add_child(_ChartBox(png))


def _round(value: float) -> float:
    return round(float(value), 2)


def console_lines(result, limit: int = 8) -> list[str]:
    """The console summary of a siting in a planner's units: people and elderly within the
    target and walk minutes before → after, each new site, and the homes no candidate reaches
    (named, the first ``limit``)."""
    u = result.report.get("planner_units")
    if not u:
        return []
    m = f"{u['minutes']:.3g}"
    lines = [
        f"  within {m} min: people {u['people_within_target_before']:,.0f} → "
        f"{u['people_within_target_after']:,.0f} "
        f"of {u['people']:,.0f}; elderly {u['elderly_within_target_before']:,.0f} → "
        f"{u['elderly_within_target_after']:,.0f} of {u['elderly']:,.0f}; walk mean {_minutes(u, 'mean')}, "
        f"90th percentile {_minutes(u, 'p90')}",
    ]
    std = result.report.get("standards")
    if std:
        s, c = std["sizing"], std["candidates"]
        fallback = "; STREET POINTS (fallback: no mapped land fits)" if c.get("street_fallback") else ""
        asked = std.get("new_sites_asked")
        fewer = f" (fewer than the {asked} new sites asked)" if asked and asked > c["kept"] else ""
        lines.append(
            f"  by the standards: {c['kept']} of {c['given']} candidate sites big enough{fewer}, minimum "
            f"catchment {s['min_catchment_residents']:,.0f} residents, spacing ≥ {s['min_spacing_m']:,.0f} m"
            f"{fallback}"
        )
        if len(result.proposed) == 0:
            lines.append(
                "  no candidate site reaches the minimum catchment within the target: nothing proposed"
            )
    for row in result.proposed.itertuples():
        uses = getattr(row, "uses", None) or row.source
        cap = getattr(row, "capacity", np.nan)
        cap_text = f", capacity {cap:,.0f}" if np.isfinite(cap) else ""
        takes = getattr(row, "people_assigned", None)
        takes_text = f", takes {takes:,.0f} residents" if takes is not None else ""
        lines.append(
            f"  #{row.rank} {row.candidate_id} ({uses}){cap_text}{takes_text}: newly serves "
            f"{row.population_newly_covered:,.0f} people, {row.elderly_newly_covered:,.0f} elderly, "
            f"{row.homes_newly_covered} homes"
        )
    if result.tradeoff is not None:
        lines.append(
            f"  trade-off of {len(result.tradeoff)} runs in tradeoff.csv and tradeoff.png; "
            "sites.gpkg holds the largest"
        )
    beyond = result.report.get("homes_beyond_every_candidate", [])
    if beyond:
        more = f" and {len(beyond) - limit} more" if len(beyond) > limit else ""
        lines.append(
            f"  {len(beyond)} homes beyond every candidate (none within {m} min): "
            f"{', '.join(beyond[:limit])}{more}"
        )
    return lines


def _minutes(u: dict, key: str) -> str:
    a, b = u.get(f"{key}_walk_min_before"), u.get(f"{key}_walk_min_after")
    return f"{a if a is not None else '–'} → {b if b is not None else '–'} min"
