"""The rural facility categories (village and township levels of TD/T 1062-2021)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from planner.categories import Category, load_categories

#: The rural categories bundled with planner (village and township levels).
RURAL_CATEGORIES_FILE = Path(__file__).resolve().parent.parent / "data" / "rural_categories.toml"
#: The category whose coverage is the plan's indicator.
STATION_KEY = "village_service_station"


def load_rural_categories(extra_file: str | Path | None = None) -> dict[str, Category]:
    """The rural categories (``data/rural_categories.toml``), updated by a user's file.

    Returns
    -------
    dict
        key → :class:`~planner.categories.Category`, village level first.
    """
    return load_categories(extra_file, files=[RURAL_CATEGORIES_FILE])


def confirmed_flags(extra_file: str | Path | None) -> dict[str, bool]:
    """``confirmed`` of each category (the loader ignores that key; a reviewer needs it)."""
    flags: dict[str, bool] = {}
    for path in [RURAL_CATEGORIES_FILE] + ([Path(extra_file)] if extra_file is not None else []):
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        for entry in data.get("category", []):
            flags[entry["key"]] = bool(entry.get("confirmed", True))
    return flags
