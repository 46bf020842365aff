"""planner.batch.rollup: indicators.csv and the map's indicator."""

from __future__ import annotations

import pytest

from planner import batch
from planner._errors import InputError


def test_whole_set_share_comes_from_summed_counts():
    rows = [
        [
            {
                "region": "big",
                "category": "park",
                "name_zh": "公园",
                "name_en": "Park",
                "level": "10min",
                "threshold": "minutes",
                "minutes": 15,
                "target_m": 500.0,
                "target_minutes": float("nan"),
                "homes": 100,
                "homes_within": 90,
                "population": 9000.0,
                "population_within": 8100.0,
                **dict.fromkeys(
                    (
                        "elderly",
                        "elderly_within",
                        "children",
                        "children_within",
                        "disabled",
                        "disabled_within",
                    ),
                    0.0,
                ),
            }
        ],
        [
            {
                "region": "small",
                "category": "park",
                "name_zh": "公园",
                "name_en": "Park",
                "level": "10min",
                "threshold": "minutes",
                "minutes": 15,
                "target_m": 500.0,
                "target_minutes": float("nan"),
                "homes": 10,
                "homes_within": 1,
                "population": 1000.0,
                "population_within": 100.0,
                **dict.fromkeys(
                    (
                        "elderly",
                        "elderly_within",
                        "children",
                        "children_within",
                        "disabled",
                        "disabled_within",
                    ),
                    0.0,
                ),
            }
        ],
    ]
    table = batch.indicators_table(rows).set_index("region")
    assert table.loc["big", "population_share"] == pytest.approx(0.9)
    assert table.loc["small", "population_share"] == pytest.approx(0.1)
    assert table.loc[batch.ALL_REGIONS, "population_share"] == pytest.approx(
        8200 / 10000
    )  # not (0.9 + 0.1) / 2
    assert (
        table.loc[batch.ALL_REGIONS, "regions"] == 2 and table.loc[batch.ALL_REGIONS, "elderly_share"] == 0.0
    )


def test_map_indicator_without_minutes_uses_the_target_when_it_is_a_threshold():
    # A metre target (kindergarten 300 m ≈ 4.5 min) or 8 min is no threshold: the largest one.
    opts = {
        "_category_keys": ["kindergarten", "pharmacy", "supermarket"],
        "minutes": (5, 10, 15),
        "_category_targets": {"kindergarten": 300 / 1.1 / 60, "pharmacy": 8.0, "supermarket": 15.0},
    }
    assert batch.parse_indicator("kindergarten", opts) == ("kindergarten", 15)
    assert batch.parse_indicator("supermarket", opts) == ("supermarket", 15)
    assert batch.parse_indicator("pharmacy:10", opts) == ("pharmacy", 10)
    with pytest.raises(InputError, match="8 min is not among --minutes"):
        batch.parse_indicator("pharmacy:8", opts)
