"""``planner review``: an estate plan checked against rule packs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import (
    CategoriesFile,
    app,
    checked_out_dir,
    coords_option,
    osm_option,
    out_option,
    say,
)

_PLAN_HELP = (
    "Estate plan: GeoJSON or GeoPackage with role=estate (households) and role=facility features "
    "(category, floor_area_m2)."
)
_RULES_HELP = "Rule packs, comma-separated: bundled names (planner/rules/*.toml) or your own TOML files."
_OSM_HELP = "OSM extract around the estate: walking network for service radii, and existing facilities."
_COORDS_HELP = (
    "Lon/lat of the plan: wgs84, gcj02 (drawn on Gaode/Amap, Tencent) or bd09 (Baidu); converted to WGS84."
)


@app.command()
def review(
    plan: Annotated[Path, typer.Option("--plan", help=_PLAN_HELP)],
    out: Annotated[Path, out_option("Output folder for review.json, review.html, summary.json.")],
    rules: Annotated[str, typer.Option("--rules", help=_RULES_HELP)] = (
        "gb50180-2018,community-service,elderly-childcare"
    ),
    osm: Annotated[str | None, osm_option(_OSM_HELP)] = None,
    categories_file: CategoriesFile = None,
    coords: Annotated[str, coords_option(_COORDS_HELP)] = "wgs84",
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
