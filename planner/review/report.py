"""The review's outputs: ``review.json`` (one object per rule), ``summary.json``, a printable
``review.html`` (inline CSS and an SVG map) and ``review_map.html`` (an interactive map that
opens offline). Every string from the plan, the packs or OSM is escaped.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely

from planner import settings
from planner.maps import escape_html
from planner.review.distances import radius_key
from planner.review.evaluate import RuleResult
from planner.rules import Rule, RulePack

if TYPE_CHECKING:
    from planner.review.workflow import Review


def write_report(rev: Review, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``review.json`` (one object per rule), ``summary.json`` and ``review.html``
    (plus ``review_map.html``, an interactive offline map, when :mod:`planner.maps` exists).

    Writes into ``out_dir`` directly; :func:`run_review` wraps it in an atomic folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    p = out / "review.json"
    p.write_text(json.dumps(rev.to_records(), ensure_ascii=False, indent=2), encoding="utf-8")
    written.append(p)
    p = out / "summary.json"
    p.write_text(json.dumps(rev.summary(), ensure_ascii=False, indent=2), encoding="utf-8")
    written.append(p)
    interactive = _interactive_map(rev)
    if interactive:
        p = out / "review_map.html"
        p.write_text(interactive, encoding="utf-8")
        written.append(p)
    p = out / "review.html"
    p.write_text(_html(rev, "review_map.html" if interactive else None), encoding="utf-8")
    written.append(p)
    return written


_CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",sans-serif;
 margin:24px;color:#222;font-size:13px;line-height:1.4}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #bbb}
.meta{color:#555;margin:0 0 12px}
.verdict{font-size:18px;font-weight:bold;padding:8px 12px;border-radius:4px;display:inline-block}
.verdict.pass{background:#e6f4ea;color:#1a7f37;border:1px solid #1a7f37}
.verdict.fail{background:#fdecea;color:#b71c1c;border:1px solid #b71c1c}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;white-space:nowrap}
table.facts{width:auto} table.facts th{font-weight:normal;color:#444}
.s-pass{color:#1a7f37;font-weight:bold}.s-fail{color:#b71c1c;font-weight:bold}.s-na{color:#888}
.s-advice{color:#a15c00;font-weight:bold} tr.advice td{background:#fffaf0}
tr.fail td{background:#fff5f5} tr.na td{color:#888}
.unconf{color:#a15c00;font-size:11px} .small{font-size:11px;color:#555}
.map{border:1px solid #ccc;max-width:100%} table.rules{table-layout:fixed} td{overflow-wrap:anywhere}
table.na-list{font-size:10px} table.na-list td{padding:1px 4px} \
.legend span{display:inline-block;margin-right:12px}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:3px;vertical-align:middle}
@media print{body{margin:10mm;font-size:10.5px} .noprint{display:none} h2{page-break-after:avoid}
 tr{page-break-inside:avoid} .map{max-height:170mm} a{color:inherit;text-decoration:none}}
"""

_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#6b6ecf",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
]


def _html(rev: Review, map_file: str | None) -> str:
    e = escape_html
    p = rev.plan
    c = rev.counts
    applicable = c["pass"] + c["fail"] + c["advice"]
    advice = f"; {c['advice']} advisory (宜) rules give advice" if c["advice"] else ""
    verdict = (
        f'<div class="verdict pass">通过 PASS — no mandatory or local rule fails{advice}</div>'
        if rev.passed
        else f'<div class="verdict fail">不通过 FAIL — {c["fail"]} of {applicable} '
        f"applicable rules fail{advice}</div>"
    )
    parts = [
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>居住区配套设施审查 Estate review — {e(p.name)}</title><style>{_CSS}</style></head><body>",
        "<h1>居住区配套设施审查 Estate facility review</h1>",
        f'<p class="meta">{e(p.name)} · {datetime.now().strftime("%Y-%m-%d %H:%M")} · planner review</p>',
        verdict,
        '<h2>概要 Summary</h2><table class="facts">',
        "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in _summary_facts(rev)),
        "</table>",
    ]
    parts += _findings(rev)
    parts.append("<h2>地图 Map</h2>")
    parts.append(_svg_map(rev))
    if map_file:
        parts.append(
            f'<iframe class="noprint" src="{map_file}" title="interactive map" '
            'style="width:100%;height:520px;border:1px solid #ccc"></iframe>'
            '<p class="noprint small">Interactive map (works offline): '
            f'<a href="{map_file}">{map_file}</a></p>'
        )
    for pack in rev.packs:
        parts += _pack_section(rev, pack)
    notes = p.notes + rev.notes
    if notes:
        parts.append("<h2>说明 Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append(
        '<p class="small">Shortfall: how much is missing to reach the threshold, in the rule\'s unit. '
        "Service radius: the walking distance within which the required share of dwellings reach the "
        "nearest facility of the category (off-street legs × "
        f"{settings.off_network_detour}).</p></body></html>"
    )
    return "\n".join(parts)


def _summary_facts(rev: Review) -> list[tuple[str, str]]:
    """(label, HTML) rows of the summary table."""
    e = escape_html
    p = rev.plan
    c = rev.counts
    return [
        ("规划文件 Plan", e(p.source)),
        ("居住区 Estate", e(p.name)),
        ("户数 Households", f"{p.households:,}"),
        (
            "人口 Residents",
            f"{p.population:,.0f}"
            + ("" if p.population_given else f" (= households × {settings.persons_per_household})"),
        ),
        (
            "级别 Level",
            e(p.level)
            + ("" if p.level_source == "plan" else f' <span class="small">({e(p.level_source)})</span>'),
        ),
        (
            "层级 Nested levels",
            "; ".join(f"{e(k)}: {n} area{'s' if n > 1 else ''}" for k, (n, _h) in rev.level_areas.items())
            + ' <span class="small">(an estate carries every lower level\'s facilities, '
            "once per area: GB 50180-2018 table 5.0.2 note)</span>",
        ),
        ("用地 Estate area", f"{p.area_m2 / 10_000:,.2f} ha"),
        (
            "设施 Planned facilities",
            f"{len(p.facilities)}"
            + (f"; {len(rev.existing)} existing from OSM" if len(rev.existing) else ""),
        ),
        ("住户点 Dwellings", f"{len(rev.dwellings):,} points: {e(rev.dwelling_source)}"),
        (
            "距离 Distances",
            {
                "network": "walking network ("
                + " and ".join(
                    x
                    for x, on in ((f"OSM streets of {rev.osm}", rev.osm), ("planned paths", len(p.paths)))
                    if on
                )
                + ")",
                "straight_line": "straight line (no network given: fails are certain, passes provisional)",
                "none": "no service-radius rule applies",
            }[rev.distance_method],
        ),
        (
            "规则 Rule packs",
            "<br>".join(
                f"{e(k.id)}: {e(k.title_zh)} / {e(k.title_en)}"
                + (f" ({e(k.province)})" if k.province else "")
                for k in rev.packs
            ),
        ),
        (
            "结果 Results",
            (
                f'<span class="s-pass">{c["pass"]} pass</span>, '
                f'<span class="s-fail">{c["fail"]} fail</span>, '
                f'<span class="s-advice">{c["advice"]} advice</span>, '
                f'<span class="s-na">{c["not_applicable"]} not applicable</span>'
            ),
        ),
    ]


def _findings(rev: Review) -> list[str]:
    """The warning about values to confirm, then the failures and the advice as lists."""
    e = escape_html
    parts = []
    unconfirmed = [r for r in rev.results if r.status != "not_applicable" and not r.rule.confirmed]
    if unconfirmed:
        parts.append(
            f'<p class="unconf">⚠ {len(unconfirmed)} applicable rules use values marked <b>to confirm</b> '
            "(confirmed = false in the pack): "
            "check them against the standard's text before relying on them.</p>"
        )
    for status, heading in (
        ("fail", "未达标 Failures (mandatory 应/必须 and local rules)"),
        ("advice", "建议 Advice (advisory 宜 rules: never fail the estate)"),
    ):
        listed = [r for r in rev.results if r.status == status]
        if not listed:
            continue
        parts.append(f"<h2>{heading}</h2><ul>")
        parts.extend(
            f"<li><b>{e(r.rule.title_zh)}</b> — {e(r.rule.title_en)}: {_fmt_value(r)} vs "
            f"{e(_fmt_target(r))}{_fmt_short(r)}"
            + (f" — {e(r.note)}" if r.note else "")
            + f' <span class="small">[{e(r.rule.strength)}; {e(r.rule.clause)}]</span></li>'
            for r in listed
        )
        parts.append("</ul>")
    return parts


def _pack_section(rev: Review, pack: RulePack) -> list[str]:
    """One pack: its applicable rules as a table, then the rules that do not apply."""
    e = escape_html
    rows = [r for r in rev.results if r.rule.pack == pack.id]
    applicable = [r for r in rows if r.status != "not_applicable"]
    skipped = [r for r in rows if r.status == "not_applicable"]
    parts = [
        f"<h2>{e(pack.title_zh)} {e(pack.title_en)}</h2>",
        f'<p class="small">{e(pack.source)}'
        + (f" — {e(pack.province)}" if pack.province else "")
        + (f" {e(pack.city)}" if pack.city else "")
        + "</p>",
    ]
    if applicable:
        parts.append(
            '<table class="rules"><colgroup><col style="width:7%"><col style="width:27%">'
            '<col style="width:17%"><col style="width:12%"><col style="width:12%"><col style="width:10%">'
            '<col style="width:15%"></colgroup><tr><th>结果 Status</th><th>规则 Rule</th><th>条文 Clause</th>'
            "<th>值 Value</th><th>要求 Threshold</th><th>差额 Shortfall</th><th>说明 Notes</th></tr>"
        )
        parts += [_rule_row(r) for r in applicable]
        parts.append("</table>")
    if skipped:
        # A plain table, not <details>: a collapsed element would not print.
        parts.append(
            f'<p class="small"><b>不适用 Not applicable</b> to this estate (level {e(rev.plan.level)}): '
            f'{len(skipped)} rules</p><table class="na-list">'
        )
        parts.append(
            "".join(
                f'<tr class="na"><td>{e(r.rule.id)}</td><td>{e(r.rule.title_zh)} {e(r.rule.title_en)}</td>'
                f"<td>{e(r.note)}</td></tr>"
                for r in skipped
            )
        )
        parts.append("</table>")
    return parts


def _rule_row(r: RuleResult) -> str:
    """A table row of one applicable rule."""
    e = escape_html
    cls = r.status
    label = {"pass": "通过 pass", "fail": "不通过 fail", "advice": "建议 advice"}[r.status]
    note = "; ".join(x for x in (r.note, r.rule.note) if x)
    conf = "" if r.rule.confirmed else '<br><span class="unconf">value to confirm</span>'
    return (
        f'<tr class="{cls}"><td class="s-{cls}">{label}'
        f'<br><span class="small">{e(r.rule.strength)}</span></td>'
        f'<td>{e(r.rule.title_zh)}<br>{e(r.rule.title_en)}<br><span class="small">{e(r.rule.id)}</span></td>'
        f'<td>{e(r.rule.clause)}{conf}</td><td class="num">{_fmt_value(r)}</td>'
        f'<td class="num">{e(_fmt_target(r))}</td><td class="num">{_fmt_short(r, bare=True)}</td>'
        f'<td class="small">{e(note)}</td></tr>'
    )


def _num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "—"
    if not math.isfinite(x):
        return "∞"
    return f"{x:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:,.0f}"


def _fmt_value(r: RuleResult) -> str:
    if r.status == "not_applicable":
        return "—"
    if r.value is None:
        return "none" if r.rule.measure == "service_radius_share" else "—"
    text = f"{_num(r.value, 2)} {escape_html(r.rule.unit)}"
    if r.rule.measure == "service_radius_share":
        text += f'<br><span class="small">{r.details.get("share_within", 0) * 100:.1f}% within</span>'
    return text


def _fmt_target(r: RuleResult) -> str:
    """The threshold as the estate must meet it: a count is per area of the rule's level."""
    areas = r.details.get("areas", 1)
    if r.rule.measure == "facility_present" and areas > 1:
        return f"≥ {r.details['required']:g} facilities (one per {r.rule.level} area × {areas})"
    return _fmt_threshold(r.rule)


def _fmt_threshold(rule: Rule) -> str:
    def one(lo: float, hi: float) -> str:
        if rule.measure == "service_radius_share":
            share = "every dwelling" if rule.min_share >= 1 else f"{rule.min_share:.0%} of dwellings"
            return f"≤ {lo:g} m for {share}"
        return f"≥ {lo:g}" if math.isinf(hi) else f"{lo:g}–{hi:g}"

    text = " or ".join(one(lo, hi) for lo, hi in rule.ranges)
    return text if rule.measure == "service_radius_share" else f"{text} {rule.unit}"


def _fmt_short(r: RuleResult, bare: bool = False) -> str:
    if r.status not in ("fail", "advice"):
        return "" if not bare else "—"
    if r.shortfall is None:
        ex = r.details.get("excess")
        if ex is not None:
            s = f"above by {_num(ex, 2)}"
        elif r.rule.measure == "service_radius_share":
            s = (
                "no facility reachable"
                if r.details.get("planned_facilities") or r.details.get("existing_facilities")
                else "no facility"
            )
        else:
            s = "—"
    else:
        s = f"{_num(r.shortfall, 2)} {escape_html(r.rule.unit)}"
        if "shortfall_area_m2" in r.details:
            s += f" ({_num(r.details['shortfall_area_m2'], 1)} m²)"
    return s if bare else f" — short {s}"


def _svg_map(rev: Review, width_px: int = 900) -> str:
    """A static map (inline SVG, in metres of the plan's CRS): prints and needs no network."""
    e = escape_html
    p = rev.plan
    minx, miny, maxx, maxy = _map_bounds(rev)
    w, h = maxx - minx, maxy - miny
    height_px = int(width_px * h / w) if w > 0 else width_px
    unit = max(w, h) / 300  # symbol size in metres

    def pt(x, y) -> str:
        return f"{x - minx:.1f},{maxy - y:.1f}"

    def path_of(g) -> str:
        out = []
        for poly in shapely.get_parts(g):
            for ring in [poly.exterior, *poly.interiors]:
                xy = shapely.get_coordinates(ring)
                out.append("M" + " L".join(pt(x, y) for x, y in xy) + "Z")
        return " ".join(out)

    svg = [
        f'<svg class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.1f} {h:.1f}" '
        f'width="{width_px}" height="{height_px}" style="background:#fafafa">'
    ]
    streets = _network_near(rev)
    if streets is not None:
        d = " ".join(
            "M" + " L".join(pt(x, y) for x, y in shapely.get_coordinates(line))
            for line in shapely.get_parts(streets)
        )
        svg.append(
            f'<path d="{d}" stroke="#b0b0b0" stroke-width="1" '
            'fill="none" vector-effect="non-scaling-stroke"/>'
        )
    svg.append(
        f'<path d="{path_of(p.estate)}" fill="#dbe9f6" fill-opacity="0.5" stroke="#2b6cb0" stroke-width="2" '
        'stroke-dasharray="6 3" vector-effect="non-scaling-stroke"/>'
    )
    failed_cats = sorted(
        {rev.category_labels.get(r.rule.category, r.rule.category) for r in _located_radius_failures(rev)}
    )
    dw = rev.dwellings
    if len(dw):
        beyond = _beyond_failed_radius(rev)
        xy = shapely.get_coordinates(dw.geometry.to_numpy())
        step = max(1, len(xy) // 4000)  # keep the file small on big estates
        for (x, y), bad in list(zip(xy, beyond, strict=True))[::step]:
            svg.append(
                f'<circle cx="{x - minx:.1f}" cy="{maxy - y:.1f}" r="{unit * 0.6:.2f}" '
                f'fill="{"#d32f2f" if bad else "#9e9e9e"}"/>'
            )
    colour = _category_colours(rev)
    if len(rev.existing):
        for g, cat in zip(rev.existing.geometry, rev.existing["category"], strict=True):
            c = g.representative_point() if g.geom_type != "Point" else g
            if minx <= c.x <= maxx and miny <= c.y <= maxy:
                svg.append(
                    f'<circle cx="{c.x - minx:.1f}" cy="{maxy - c.y:.1f}" r="{unit * 2:.2f}" fill="white" '
                    f'stroke="{colour[cat]}" stroke-width="2" vector-effect="non-scaling-stroke"/>'
                )
    for g, cat, fid in zip(
        p.facilities.geometry, p.facilities["category"], p.facilities["facility_id"], strict=True
    ):
        if g.geom_type == "Point":
            svg.append(
                f'<circle cx="{g.x - minx:.1f}" cy="{maxy - g.y:.1f}" '
                f'r="{unit * 2.5:.2f}" fill="{colour[cat]}" '
                'stroke="black" stroke-width="0.5" vector-effect="non-scaling-stroke">'
                f"<title>{e(fid)} {e(cat)}</title></circle>"
            )
        else:
            svg.append(
                f'<path d="{path_of(g)}" fill="{colour[cat]}" fill-opacity="0.6" stroke="black" '
                'stroke-width="0.5" vector-effect="non-scaling-stroke">'
                f"<title>{e(fid)} {e(cat)}</title></path>"
            )
    svg += _svg_scale_bar(w, h, unit)
    svg.append("</svg>")
    return "".join(svg) + _svg_legend(rev, colour, failed_cats, len(dw) > 0)


def _svg_scale_bar(w: float, h: float, unit: float) -> list[str]:
    """A scale bar of a round length near a fifth of the map's width ``w`` (metres)."""
    bar = next((b for b in (2000, 1000, 500, 200, 100, 50, 20, 10) if b <= w / 4), 10)
    y0 = h - unit * 6
    return [
        f'<path d="M{unit * 5:.1f},{y0:.1f} h{bar}" '
        'stroke="black" stroke-width="3" vector-effect="non-scaling-stroke"/>',
        f'<text x="{unit * 5:.1f}" y="{y0 - unit * 2:.1f}" font-size="{unit * 5:.1f}">{bar} m</text>',
    ]


def _svg_legend(rev: Review, colour: dict[str, str], failed_cats: list[str], any_dwellings: bool) -> str:
    """The legend under the static map: category colours, dwellings, existing facilities."""
    e = escape_html
    legend = ['<p class="legend small">']
    legend += [
        f'<span><i class="dot" style="background:{colour[c]}"></i>{e(rev.category_labels.get(c, c))}</span>'
        for c in colour
    ]
    legend.append('<span><i class="dot" style="background:#9e9e9e"></i>dwelling</span>')
    if failed_cats or any_dwellings:
        legend.append(
            '<span><i class="dot" style="background:#d32f2f"></i>dwelling beyond a failed radius '
            f"({e(', '.join(failed_cats)) or 'none'})</span>"
        )
    if len(rev.existing):
        legend.append(
            '<span><i class="dot" style="border:2px solid #555;width:7px;height:7px"></i>'
            "existing (OSM)</span>"
        )
    legend.append("<span>filled: planned; dashed outline: estate; grey lines: walking network</span></p>")
    return "".join(legend)


def _interactive_map(rev: Review) -> str | None:
    """Offline interactive map (Leaflet inlined by :mod:`planner.maps`); None without that module."""
    try:
        from planner import maps
    except ImportError:
        return None
    p = rev.plan
    colour = _category_colours(rev)
    estate = gpd.GeoDataFrame({"name": [p.name]}, geometry=[p.estate], crs=p.crs)
    m = maps.base_map(tuple(estate.to_crs(4326).total_bounds))
    maps.add_title(
        m,
        f"居住区配套设施审查 Estate review — {p.name}",
        f"{'PASS' if rev.passed else 'FAIL'}: {rev.counts['fail']} of "
        f"{rev.counts['pass'] + rev.counts['fail'] + rev.counts['advice']} applicable rules fail, "
        f"{rev.counts['advice']} give advice",
    )
    streets = _network_near(rev)
    if streets is not None:
        # One MultiLineString: folium styles per feature, and an OSM extract has tens of thousands of edges.
        lines = gpd.GeoDataFrame(geometry=[streets], crs=p.crs)
        maps.add_lines(m, lines, name="步行网络 Walking network")
    maps.add_polygons(m, estate, colour="#2b6cb0", name="居住区 Estate", dash_array="6 4", fill_opacity=0.08)
    dw = rev.dwellings
    if len(dw):
        beyond = _beyond_failed_radius(rev)
        dots = dw[["geometry"]].copy()
        dots["colour"] = np.where(beyond, "#d32f2f", "#9e9e9e")
        maps.add_points(m, dots, colours="colour", radius=2.5, name="住户 Dwellings")
    facs = p.facilities.copy()
    if len(facs):
        facs["colour"] = facs["category"].map(colour)
        polys = facs[facs.geom_type != "Point"]
        if len(polys):
            maps.add_polygons(
                m,
                polys[["facility_id", "category", "colour", "geometry"]],
                colour="colour",
                fill_opacity=0.4,
                name="规划设施用地 Planned facility land",
            )
        pts = facs[["facility_id", "category", "name", "floor_area_m2", "land_area_m2", "colour"]].copy()
        pts = gpd.GeoDataFrame(pts, geometry=facs.geometry.representative_point(), crs=facs.crs)
        maps.add_points(
            m,
            pts,
            colours="colour",
            radius=7,
            outline="#000000",
            weight=1,
            tooltip_columns=["facility_id", "category", "name", "floor_area_m2", "land_area_m2"],
            name="规划设施 Planned facilities",
        )
    if len(rev.existing):
        ex = rev.existing.copy()
        ex["colour"] = "#ffffff"
        ex = gpd.GeoDataFrame(
            ex.drop(columns="geometry"), geometry=ex.geometry.representative_point(), crs=ex.crs
        )
        maps.add_points(
            m,
            ex[["facility_id", "category", "name", "colour", "geometry"]],
            colours="colour",
            radius=5,
            outline="#444444",
            weight=2,
            tooltip_columns=["facility_id", "category", "name"],
            name="现状设施 Existing (OSM)",
        )
    items = [(colour[c], rev.category_labels.get(c, c)) for c in colour]
    items += [("#9e9e9e", "dwelling"), ("#d32f2f", "dwelling beyond a failed radius")]
    if len(rev.existing):
        items.append(("#444444", "existing facility (OSM)", "ring"))
    items.append(("#2b6cb0", "estate boundary", "line"))
    maps.add_legend(m, "图例 Legend", items)
    import folium

    folium.LayerControl(collapsed=True).add_to(m)
    return maps.offline_html(m)


def _map_bounds(rev: Review) -> tuple[float, float, float, float]:
    """What the maps show: the estate and its planned facilities, with a margin."""
    p = rev.plan
    geoms = np.array([p.estate, *p.facilities.geometry], dtype=object)
    minx, miny, maxx, maxy = shapely.bounds(shapely.union_all(geoms))
    pad = max(maxx - minx, maxy - miny) * 0.08 + 30
    return minx - pad, miny - pad, maxx + pad, maxy + pad


def _network_near(rev: Review):
    """Network edges with an end inside the map bounds, as one MultiLineString (None without)."""
    net = rev.network
    if net is None:
        return None
    minx, miny, maxx, maxy = _map_bounds(rev)

    def inside(i: np.ndarray) -> np.ndarray:
        return (net.x[i] >= minx) & (net.x[i] <= maxx) & (net.y[i] >= miny) & (net.y[i] <= maxy)

    keep = (inside(net.u) | inside(net.v)) & (net.u < net.v)  # one direction of two-way edges
    if not keep.any():
        return None
    a = np.column_stack([net.x[net.u[keep]], net.y[net.u[keep]]])
    b = np.column_stack([net.x[net.v[keep]], net.y[net.v[keep]]])
    return shapely.multilinestrings(shapely.linestrings(np.stack([a, b], axis=1)))


def _category_colours(rev: Review) -> dict[str, str]:
    cats = sorted(
        set(rev.plan.facilities["category"]) | set(rev.existing["category"] if len(rev.existing) else [])
    )
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(cats)}


def _beyond_failed_radius(rev: Review) -> np.ndarray:
    """Dwellings farther than the radius of any failed radius rule: where the plan falls short."""
    dw = rev.dwellings
    beyond = np.zeros(len(dw), bool)
    for r in _located_radius_failures(rev):
        col = f"{radius_key(r.rule)}_m"
        if col in dw.columns:
            beyond |= ~(dw[col].to_numpy(float) <= r.rule.ranges[0][0])
    return beyond


def _located_radius_failures(rev: Review) -> list[RuleResult]:
    """Failed radius rules of categories that have a facility (a missing one fails everywhere)."""
    return [
        r
        for r in rev.results
        if r.status == "fail"
        and r.rule.measure == "service_radius_share"
        and (r.details.get("planned_facilities") or r.details.get("existing_facilities"))
    ]
