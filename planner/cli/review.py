"""``planner review``: an estate plan checked against rule packs."""

from __future__ import annotations

from pathlib import Path

import typer

from planner.cli._common import (
    app,
    checked_out_dir,
    say,
)


@app.command()
def review(
    plan: Path = typer.Option(
        ...,
        "--plan",
        help="Estate plan: GeoJSON or GeoPackage with role=estate "
        "(households) and role=facility features (category, "
        "floor_area_m2).",
    ),
    out: Path = typer.Option(..., "--out", help="Output folder for review.json, review.html, summary.json."),
    rules: str = typer.Option(
        "gb50180-2018,community-service,elderly-childcare",
        "--rules",
        help="Rule packs, comma-separated: bundled names (planner/rules/*.toml) or your own TOML files.",
    ),
    osm: str | None = typer.Option(
        None,
        "--osm",
        help="OSM extract around the estate: walking network for service radii, and existing facilities.",
    ),
    categories_file: Path | None = typer.Option(None, "--categories-file", help="Your own categories TOML."),
    coords: str = typer.Option(
        "wgs84",
        "--coords",
        help="Lon/lat of the plan: wgs84, gcj02 (drawn on "
        "Gaode/Amap, Tencent) or bd09 (Baidu); converted "
        "to WGS84.",
    ),
) -> None:
    """Check a new estate's plan against facility rules; exit 0 if no mandatory or local rule
    fails (advisory rules only give advice), 1 if any does, 2 on bad input."""
    import json

    from planner.review import run_review

    checked_out_dir(
        out, plan, osm, categories_file, *(r for r in rules.split(",") if Path(r).suffix == ".toml")
    )
    code = run_review(plan, rules=rules, osm=osm, out_dir=out, categories_file=categories_file, coords=coords)
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    say(
        f"{s['verdict'].upper()}: {s['counts']['fail']} failed, {s['counts']['advice']} advice, "
        f"{s['counts']['pass']} passed, {s['counts']['not_applicable']} not applicable; see {out}/review.html"
    )
    raise typer.Exit(code)
