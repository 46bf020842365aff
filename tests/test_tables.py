"""Excel-ready tables (planner/tables.py): UTF-8 with a BOM, percentages to 0.1, whole people,
and the --excel workbook read back with openpyxl."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLES

from planner.cli import main
from planner.tables import excel_ready, header_zh, write_tables

CAU = str(SAMPLES / "beijing_haidian_cau.osm.pbf")
BOM = b"\xef\xbb\xbf"


def test_shares_become_percent_and_people_whole_numbers():
    table = pd.DataFrame(
        {
            "category": ["a", "b", "c"],
            "population_share": [0.12345, 0.12355, 1.0],
            "population_share_before": [0.0, 0.5, np.nan],
            "population_outside": [2.5, 3.5, 1234.49],
            "elderly_within": [0.4, 0.6, 10.0],
            "people_within_target": [7.5, 8.5, 0.0],
            "minutes": [5, 10, 15],
            "elderly_time_factor": [1.4, 1.4, 1.4],
        }
    )
    out = excel_ready(table)
    assert list(out.columns) == [
        "category",
        "population_pct",
        "population_pct_before",
        "population_outside",
        "elderly_within",
        "people_within_target",
        "minutes",
        "elderly_time_factor",
    ]
    assert out["population_pct"].tolist() == [12.3, 12.4, 100.0]
    assert out["population_pct_before"].iloc[:2].tolist() == [0.0, 50.0] and np.isnan(
        out["population_pct_before"].iloc[2]
    )
    # Nearest whole person, halves to even.
    assert out["population_outside"].tolist() == [2, 4, 1234]
    assert out["elderly_within"].tolist() == [0, 1, 10]
    assert out["people_within_target"].tolist() == [8, 8, 0]
    assert out["minutes"].tolist() == [5, 10, 15] and out["elderly_time_factor"].tolist() == [1.4] * 3
    assert table["population_share"].iloc[0] == 0.12345  # the caller's table is left alone


def test_chinese_headers():
    assert header_zh("population_pct") == "人口比例(%)"
    assert header_zh("elderly_pct_before") == "老年人比例(%)规划前"
    assert header_zh("category") == "设施类别"
    assert header_zh("no_such_column") == ""


def test_csv_has_bom_and_xlsx_reads_back(tmp_path):
    from openpyxl import load_workbook

    table = pd.DataFrame({"category": ["幼儿园"], "population_share": [0.5004], "population_outside": [10.5]})
    write_tables(tmp_path, {"coverage": table}, excel=True, workbook="t.xlsx")
    raw = (tmp_path / "coverage.csv").read_bytes()
    assert raw.startswith(BOM)
    assert raw[3:].decode("utf-8").splitlines() == [
        "category,population_pct,population_outside",
        "幼儿园,50.0,10",
    ]
    ws = load_workbook(tmp_path / "t.xlsx")["coverage"]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows == [
        ["设施类别", "人口比例(%)", "人口范围外"],
        ["category", "population_pct", "population_outside"],
        ["幼儿园", 50.0, 10],
    ]


def test_cli_audit_and_site_write_excel_ready_tables(tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "audit"
    assert (
        main(
            [
                "audit",
                "--osm",
                CAU,
                "--categories",
                "kindergarten,market",
                "--isochrones",
                "none",
                "--no-map",
                "--excel",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "coverage.csv").read_bytes().startswith(BOM)
    cov = pd.read_csv(out / "coverage.csv")
    assert "population_share" not in cov.columns and cov["population_pct"].between(0, 100).all()
    assert (cov["population_pct"] == cov["population_pct"].round(1)).all()
    assert (cov["population_within"] == cov["population_within"].round()).all()
    ws = load_workbook(out / "audit.xlsx")["coverage"]
    header = [c.value for c in ws[2]]
    assert [c.value for c in ws[1]][header.index("population_pct")] == "人口比例(%)"
    values = [[c.value for c in row] for row in ws.iter_rows(min_row=3)]
    assert len(values) == len(cov)
    assert [r[header.index("population_pct")] for r in values] == pytest.approx(
        cov["population_pct"].tolist()
    )
    assert [r[header.index("category")] for r in values] == cov["category"].tolist()
    with warnings.catch_warnings():  # one layer per GeoPackage: a plain read_file, no warning
        warnings.simplefilter("error")
        assert len(gpd.read_file(out / "homes.gpkg")) > 0 and len(gpd.read_file(out / "facilities.gpkg")) > 0

    site = tmp_path / "site"
    assert (
        main(
            [
                "site",
                "--no-standards",  # the pure model: two sites to tabulate
                "--osm",
                CAU,
                "--category",
                "kindergarten",
                "--model",
                "mclp",
                "--new",
                "2",
                "--minutes",
                "5",
                "--no-map",
                "--excel",
                "--out",
                str(site),
            ]
        )
        == 0
    )
    raw = (site / "before_after.csv").read_bytes()
    assert raw.startswith(BOM)
    ba = pd.read_csv(site / "before_after.csv")
    assert list(ba.columns[1:4]) == ["population_pct_before", "population_pct_after", "population_pct_change"]
    ws = load_workbook(site / "site.xlsx")["before_after"]
    assert [c.value for c in ws[2]] == list(ba.columns)
    assert [c.value for c in ws[3]][1:3] == pytest.approx(ba.iloc[0, 1:3].tolist())
    # One layer per GeoPackage: a plain read_file gives the table with no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sites = gpd.read_file(site / "sites.gpkg")
        existing = gpd.read_file(site / "existing_sites.gpkg")
    assert sites["rank"].tolist() == [1, 2] and len(existing) > 0


def test_batch_failures_with_excel(tmp_path, monkeypatch):
    from openpyxl import load_workbook

    from planner import settings
    from planner.batch.rollup import write_rollup

    monkeypatch.setattr(settings, "excel", True)
    write_rollup(
        tmp_path, [], [{"region": "甲县", "osm": "a.osm.pbf", "error": "no homes found"}], [], None, None
    )
    assert (tmp_path / "failures.csv").read_bytes().startswith(BOM)
    ws = load_workbook(tmp_path / "batch.xlsx")["failures"]
    assert [[c.value for c in row] for row in ws.iter_rows()] == [
        ["区域", "OSM文件", "错误"],
        ["region", "osm", "error"],
        ["甲县", "a.osm.pbf", "no homes found"],
    ]
    monkeypatch.setattr(settings, "excel", False)
    write_rollup(tmp_path, [], [], [], None, None)
    assert not (tmp_path / "batch.xlsx").exists()  # an earlier run's workbook is not left behind
