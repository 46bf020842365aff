"""The trade-off curve (planner site --new 1-12) and results in a planner's units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from browser import SKIP_REASON, chromium_available, open_in_browser

from planner._errors import InputError
from planner.cli import main
from planner.tradeoff import parse_new_range, planner_units, weighted_quantile


def test_parse_new_range():
    assert parse_new_range("1-12") == list(range(1, 13))
    assert parse_new_range(" 3 ") == [3] and parse_new_range(4) == [4] and parse_new_range(None) is None
    for bad in ("0", "5-2", "a", "1-", "1-51", "-1"):
        with pytest.raises(InputError, match="--new"):
            parse_new_range(bad)


def test_weighted_quantile_by_hand():
    # Weights 1, 1, 8: 90 % of the weight (9 of 10) is reached only at the third value.
    assert weighted_quantile(np.array([60.0, 120, 600]), np.array([1.0, 1, 8]), 0.9) == 600
    assert weighted_quantile(np.array([60.0, 120, 600]), np.array([8.0, 1, 1]), 0.9) == 120
    assert weighted_quantile(np.array([60.0, 120, 600]), np.array([8.0, 1, 1]), 0.5) == 60


def test_planner_units_by_hand():
    homes = pd.DataFrame(
        {
            "population": [100.0, 50, 50],
            "elderly": [20.0, 10, 0],
            "time_before_s": [600.0, np.nan, 200],
            "time_after_s": [250.0, 280, 200],
        }
    )
    u = planner_units(homes, 5.0, elderly_time_factor=1.2)
    assert u["people_within_target_before"] == 50 and u["people_within_target_after"] == 200
    # Elderly at 1.2 × the time: 250 s → 300 s (in), 280 s → 336 s (out).
    assert u["elderly_within_target_before"] == 0 and u["elderly_within_target_after"] == 20
    assert u["mean_walk_min_before"] == pytest.approx((100 * 600 + 50 * 200) / 150 / 60, abs=0.01)
    assert u["people_without_time_before"] == 50
    assert u["mean_walk_min_after"] == pytest.approx((100 * 250 + 50 * 280 + 50 * 200) / 200 / 60, abs=0.01)
    assert u["p90_walk_min_after"] == pytest.approx(280 / 60, abs=0.01)


@pytest.fixture(scope="module")
def curve(tmp_path_factory):
    out = tmp_path_factory.mktemp("tradeoff") / "site"
    rc = main(
        [
            "site",
            "--osm",
            "nanjing_xinjiekou",
            "--category",
            "clinic",
            "--model",
            "mclp",
            "--new",
            "1-5",
            "--standards",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    return out


def test_tradeoff_csv_is_monotone(curve):
    table = pd.read_csv(curve / "tradeoff.csv")
    assert list(table["new_sites_allowed"]) == [1, 2, 3, 4, 5]
    assert (table["new_sites"] <= table["new_sites_allowed"]).all()
    assert (np.diff(table["objective"]) >= -1e-6).all()
    assert (np.diff(table["people_within_target"]) >= -1e-6).all()
    assert table["people_newly_within_target"].iloc[-1] > table["people_newly_within_target"].iloc[0] > 0


def test_tradeoff_png_and_chart_in_the_map_offline(curve):
    png = (curve / "tradeoff.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    html = (curve / "map.html").read_text(encoding="utf-8")
    assert "planner-tradeoff-chart" in html
    if not chromium_available():
        pytest.skip(SKIP_REASON)
    result = open_in_browser(
        curve / "map.html",
        extra_js="""
        var img = document.querySelector('img.planner-tradeoff-chart');
        return img ? [img.complete, img.naturalWidth, img.naturalHeight] : null;""",
    )
    assert result["errors"] == [] and result["external"] == []
    complete, width, height = result["extra"]
    assert complete and (width, height) == (770, 440)  # 7 × 4 inches at 110 dpi


def test_a_range_is_refused_for_lscp(tmp_path, capsys):
    rc = main(
        [
            "site",
            "--osm",
            "nanjing_xinjiekou",
            "--category",
            "clinic",
            "--model",
            "lscp",
            "--new",
            "1-3",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert rc == 2
    assert "--new" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
