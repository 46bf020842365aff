"""``planner categories`` and ``planner rules``: what is bundled."""

from __future__ import annotations

from pathlib import Path

import typer

from planner.cli._common import (
    app,
    say,
)


@app.command("categories")
def list_categories(
    categories_file: Path | None = typer.Option(
        None, "--categories-file", help="Include your own categories TOML."
    ),
) -> None:
    """List facility categories: key, names, level, target in its source's unit, source."""
    from planner.categories import load_categories

    for cat in load_categories(categories_file).values():
        flags = ("basic" if cat.basic else "") + ("" if cat.confirmed else " to-confirm")
        say(
            f"{cat.key:<20} {cat.name_zh:<16} {cat.name_en:<36} {cat.target_label:>10}  "
            f"({cat.level}{', ' + flags.strip() if flags.strip() else ''})"
        )
        say(f"{'':<20} source: {cat.source}")


@app.command("rules")
def list_rules(
    rules: str | None = typer.Option(
        None,
        "--rules",
        help="Rule packs to list, comma-separated: bundled ids "
        "or your own TOML files (default: every bundled pack).",
    ),
) -> None:
    """List rule packs (planner review --rules): id, titles, scope, source, number of rules and
    how many are confirmed."""
    from planner.rules import list_rulepacks, load_rulepack

    names = [r.strip() for r in rules.split(",") if r.strip()] if rules else list_rulepacks()
    for name in names:
        pack = load_rulepack(name)
        confirmed = sum(r.confirmed for r in pack.rules)
        place = " ".join(p for p in (pack.province, pack.city) if p)
        scope = pack.scope + (f" ({place})" if place else "")
        say(f"{pack.id:<32} {pack.title_zh}  {pack.title_en}")
        say(
            f"{'':<32} scope: {scope}; {len(pack.rules)} rules, {confirmed} confirmed "
            f"({len(pack.rules) - confirmed} to confirm)"
        )
        say(f"{'':<32} source: {pack.source}")
