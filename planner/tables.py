"""Excel-ready tables: every CSV planner writes, and the ``--excel`` workbook.

A table as written (:func:`excel_ready`):

- shares become percentages rounded to 0.1: a column whose name holds ``share`` is renamed
  with ``pct`` in its place (``population_share`` → ``population_pct``,
  ``population_share_before`` → ``population_pct_before``) and holds ``100 × share``;
- people are whole numbers: ``population``, ``people``, ``elderly``, ``children``,
  ``disabled`` and the columns starting with them (``population_outside``,
  ``elderly_within``...) are rounded to the nearest person (halves to even). Each figure
  is rounded from its unrounded value and every percentage is computed before rounding, so
  a total is the true total rounded, not the sum of rounded parts;
- CSVs are UTF-8 with a byte-order mark, so Excel on Chinese Windows shows the Chinese text.

:func:`write_xlsx` puts several tables in one workbook, one sheet each, with a row of Chinese
headers above the English keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["PEOPLE", "excel_ready", "header_zh", "whole_people", "write_csv", "write_tables", "write_xlsx"]

#: Column-name stems counted in people.
PEOPLE = ("population", "people", "elderly", "children", "disabled")

#: Encoding of every CSV planner writes: UTF-8 with a byte-order mark (Excel reads it as UTF-8).
CSV_ENCODING = "utf-8-sig"

_PEOPLE_RE = re.compile(
    r"^(population|people|elderly|children|disabled)"
    r"(_(?!.*(pct|share|time|_s$|_m$)).*)?$"
)

# Chinese for the words of column names; a header is the words' Chinese joined, or one of
# _HEADERS_ZH when the words do not read well joined.
_WORDS_ZH = {
    "population": "人口",
    "people": "人口",
    "elderly": "老年人",
    "children": "儿童",
    "disabled": "残疾人",
    "homes": "住宅",
    "pct": "比例(%)",
    "before": "规划前",
    "after": "规划后",
    "change": "变化",
    "within": "范围内",
    "outside": "范围外",
    "inside": "设施内",
    "villages": "行政村",
    "regions": "区域数",
    "newly": "新增",
    "covered": "覆盖",
    "target": "目标",
    "minutes": "分钟",
    "m": "米",
    "new": "新增",
    "sites": "设施点",
}
_HEADERS_ZH = {
    "category": "设施类别",
    "name_zh": "中文名称",
    "name_en": "英文名称",
    "level": "层级",
    "threshold": "阈值类型",
    "minutes": "时间(分钟)",
    "target_m": "目标距离(米)",
    "target_minutes": "目标时间(分钟)",
    "target_unit": "目标单位",
    "target_source": "依据(标准条款)",
    "confirmed": "已核实",
    "source": "依据(标准条款)",
    "region": "区域",
    "error": "错误",
    "indicator": "指标",
    "unit": "统计单元",
    "mode": "出行方式",
    "target_pct": "目标比例(%)",
    "baseline_pct_2020": "2020年基数(%)",
    "target_met": "达标",
    "villages_inside": "有设施的行政村",
    "villages_within_target": "目标时间内的行政村",
    "pct_inside": "设施覆盖率(%)",
    "pct_within_target": "目标时间内比例(%)",
    "population_pct_inside": "人口覆盖率(%)",
    "population_pct_within_target": "目标时间内人口比例(%)",
    "new": "新增设施数",
    "objective": "目标函数值",
    "gap": "最优性差距",
    "osm": "OSM文件",
}


def whole_people(values) -> np.ndarray:
    """People rounded to the nearest whole person (halves to even), NaN kept."""
    return np.rint(np.asarray(values, dtype=float))


def _pct_name(col: str) -> str:
    return re.sub(r"(^|_)share(_|$)", r"\1pct\2", col)


def excel_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as written: shares as percentages rounded to 0.1, people as whole numbers.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table with ``*share*`` columns (fractions 0–1) and people columns (floats).

    Returns
    -------
    pandas.DataFrame
        A copy with the share columns renamed ``*pct*`` (see the module docstring).
    """
    out = frame.copy()
    renames = {}
    for col in out.columns:
        name = str(col)
        if "share" in name.split("_"):
            values = pd.to_numeric(out[col], errors="coerce").astype(float)
            out[col] = (100.0 * values).round(1)
            renames[col] = _pct_name(name)
        elif (
            _PEOPLE_RE.match(name)
            and pd.api.types.is_numeric_dtype(out[col])
            and not pd.api.types.is_bool_dtype(out[col])
        ):
            out[col] = pd.array(whole_people(out[col]), dtype="Float64").astype("Int64")
    return out.rename(columns=renames)


def header_zh(col: str) -> str:
    """Chinese header of a column key ('' when planner has none)."""
    if col in _HEADERS_ZH:
        return _HEADERS_ZH[col]
    words = col.split("_")
    if all(w in _WORDS_ZH for w in words):
        return "".join(_WORDS_ZH[w] for w in words)
    return ""


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write an :func:`excel_ready` copy of ``frame`` as UTF-8 with a byte-order mark."""
    path = Path(path)
    excel_ready(frame).to_csv(path, index=False, encoding=CSV_ENCODING)
    return path


def write_xlsx(tables: Mapping[str, pd.DataFrame], path) -> None:
    """Write tables into one workbook (``path``: a file name or a binary file), one sheet per
    table (named by its key).

    Row 1 holds the Chinese headers, row 2 the English keys (as in the CSVs); values are
    :func:`excel_ready`.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for name, frame in tables.items():
        table = excel_ready(frame)
        ws = wb.create_sheet(title=str(name)[:31])
        ws.append([header_zh(str(c)) for c in table.columns])
        ws.append([str(c) for c in table.columns])
        for cell in (*ws[1], *ws[2]):
            cell.font = Font(bold=True)
        for row in table.itertuples(index=False):
            ws.append([_cell(v) for v in row])
        ws.freeze_panes = "A3"
    wb.save(path)


def write_tables(
    folder: str | Path, tables: Mapping[str, pd.DataFrame], excel: bool = False, workbook: str = "tables.xlsx"
) -> list[Path]:
    """Write ``<key>.csv`` for each table in ``folder``, and with ``excel`` one workbook
    ``workbook`` holding them all."""
    folder = Path(folder)
    paths = [write_csv(frame, folder / f"{name}.csv") for name, frame in tables.items()]
    if excel:
        write_xlsx(tables, folder / workbook)
        paths.append(folder / workbook)
    return paths


def _cell(value):
    """A value openpyxl stores: numpy scalars as Python ones, missing values as empty cells."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, dict, tuple)):
        return str(value)
    return value
