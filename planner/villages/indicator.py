"""The plan's indicator and the per-category shares of hamlets (``indicators.csv``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from planner._errors import InputError
from planner.categories import Category
from planner.demand import weighted_share

from .admin import empty_admin_villages, indicator_rows
from .rural import STATION_KEY

#: The plan's target and baseline: share of villages with a comprehensive service facility,
#: ≥ 80 % by 2025 from 65.7 % at end-2020 (国办发〔2021〕56号; facts §2, confirmed).
TARGET_SHARE = 0.8
BASELINE_SHARE_2020 = 0.657
INDICATOR_SOURCE = (
    "国办发〔2021〕56号《“十四五”城乡社区服务体系建设规划》: rural community comprehensive "
    "service facility coverage 65.7% (2020) → ≥ 80% (2025)"
)


def coverage_indicators(
    villages: pd.DataFrame,
    categories: Sequence[Category],
    minutes: dict[str, float],
    modes: dict[str, str],
    confirmed: dict[str, bool] | None = None,
    target_share: float = TARGET_SHARE,
    admin: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The plan's indicator, then shares of hamlets (and of their people) with each category
    inside and within reach.

    The first row (``indicator = "rural_service_coverage"``, unit ``administrative_village``)
    is the plan's indicator: the share of administrative villages (``admin``, from
    :func:`planner.villages.admin.audit_admin_villages`) with a comprehensive service facility
    in their territory, against ``target_share``. The next two are the shares of hamlets and
    of their residents within the village-level walk of one; then one row per category
    (unit ``hamlet``).

    Returns
    -------
    DataFrame
        ``indicator``, ``category``, ``name_zh``, ``name_en``, ``level``, ``mode``,
        ``target_minutes``, ``villages``, ``villages_inside``, ``share_inside``,
        ``villages_within_target``, ``share_within_target``, ``population_share_inside``,
        ``population_share_within_target``, ``target_share``, ``baseline_share_2020``,
        ``target_met``, ``confirmed``, ``source``, ``unit``.
    """
    confirmed = confirmed or {}
    pop = villages["population"].to_numpy(float)
    n = len(villages)
    rows = []
    for cat in categories:
        inside = villages[f"{cat.key}_inside"].to_numpy(bool)
        within = villages[f"{cat.key}_within"].to_numpy(bool)
        rows.append(
            {
                "indicator": "category",
                "category": cat.key,
                "name_zh": cat.name_zh,
                "name_en": cat.name_en,
                "level": cat.level,
                "mode": modes[cat.key],
                "target_minutes": minutes[cat.key],
                "villages": n,
                "villages_inside": int(inside.sum()),
                "share_inside": weighted_share(inside, np.ones(n)),
                "villages_within_target": int(within.sum()),
                "share_within_target": weighted_share(within, np.ones(n)),
                "population_share_inside": weighted_share(inside, pop),
                "population_share_within_target": weighted_share(within, pop),
                "target_share": np.nan,
                "baseline_share_2020": np.nan,
                "target_met": None,
                "confirmed": confirmed.get(cat.key, True),
                "source": cat.source,
                "unit": "hamlet",
            }
        )
    if admin is None:
        admin = empty_admin_villages(getattr(villages, "crs", None))
        admin = admin.assign(has_facility=pd.Series([], dtype=bool))
    head = indicator_rows(
        admin,
        villages,
        minutes[STATION_KEY],
        modes[STATION_KEY],
        target_share,
        BASELINE_SHARE_2020,
        INDICATOR_SOURCE,
        confirmed.get(STATION_KEY, True),
    )
    return pd.DataFrame(head + rows)[INDICATOR_COLUMNS]


#: Columns of ``indicators.csv``, in order.
INDICATOR_COLUMNS = [
    "indicator",
    "unit",
    "category",
    "name_zh",
    "name_en",
    "level",
    "mode",
    "target_minutes",
    "villages",
    "villages_inside",
    "share_inside",
    "villages_within_target",
    "share_within_target",
    "population_share_inside",
    "population_share_within_target",
    "target_share",
    "baseline_share_2020",
    "target_met",
    "confirmed",
    "source",
]


def check_share(share: float) -> None:
    """Refuse a target share outside (0, 1] (one line, naming the value)."""
    if not (isinstance(share, (int, float)) and 0 < share <= 1):
        raise InputError(f"target share {share!r}: give a share between 0 and 1, e.g. 0.8")
