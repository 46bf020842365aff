"""The one CSV reader of every input table: UTF-8 (with or without BOM) or GBK/GB18030.

Excel on Chinese Windows saves CSVs as GBK (code page 936); Excel elsewhere and most tools
write UTF-8, often with a BOM. A BOM says UTF-8; otherwise the bytes are decoded as UTF-8 and
as GB18030 (a superset of GBK and GB2312): the one that decodes wins, and when both do, UTF-8
unless only its reading holds letters of non-Chinese scripts (see ``detect_encoding``). Text
that is neither is refused with one line.
"""

from __future__ import annotations

import codecs
import io
import os
from pathlib import Path

import pandas as pd

from planner._errors import InputError

__all__ = ["WKT_COLUMNS", "decode_text", "detect_encoding", "read_csv", "read_wkt_csv"]

#: Column names of a CSV's geometry as WKT (first found is used).
WKT_COLUMNS = ("wkt", "WKT", "geometry", "geom")
#: Encodings a CSV may be in, besides UTF-8: GB18030 decodes GBK and GB2312 too.
CHINESE_ENCODINGS = ("gb18030",)


def detect_encoding(raw: bytes, label: str = "CSV") -> str:
    """The encoding of a CSV's bytes: ``"utf-8-sig"``, ``"utf-8"`` or ``"gb18030"``.

    Raises
    ------
    InputError
        When the bytes are none of these (e.g. UTF-16 or Latin-1 text).
    """
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{label}: UTF-16 text; save the CSV as UTF-8 (Excel: CSV UTF-8) or GBK")
    texts = {}
    for encoding in ("utf-8", *CHINESE_ENCODINGS):
        try:
            texts[encoding] = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    if not texts:
        raise InputError(
            f"{label}: neither UTF-8 nor GBK/GB18030 text; save the CSV as UTF-8 (Excel: CSV UTF-8)"
        )
    if len(texts) == 1:
        return next(iter(texts))
    # Both decode. Real UTF-8 text almost never decodes as GB18030 into anything but noise,
    # while short GBK text can be valid UTF-8 by chance: 学院路 in GBK reads as 'ѧԺ·' in
    # UTF-8, letters of scripts a Chinese table does not hold. So UTF-8 wins unless its reading
    # has such letters and the GB18030 reading has none (an RTL mark or “quotes” in UTF-8 text
    # decode as GB18030 too, into ideographs, which is why "looks Chinese" cannot decide).
    if _foreign_letters(texts["utf-8"]) and not _foreign_letters(texts["gb18030"]):
        return "gb18030"
    return "utf-8"


def _foreign_letters(text: str) -> int:
    """Characters from U+0080 to U+07FF other than Latin-1's: C1 controls, Latin Extended,
    Greek, Cyrillic, Armenian, Hebrew, Arabic... (where GBK bytes land when read as UTF-8)."""
    return sum(1 for ch in text if 0x80 <= ord(ch) <= 0x9F or 0x100 <= ord(ch) <= 0x7FF)


def decode_text(path: str | os.PathLike, label: str | None = None) -> str:
    """The text of a file in UTF-8 (BOM or none) or GBK/GB18030 (see :func:`detect_encoding`)."""
    label = label or os.fspath(path)
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{label}: {'a folder' if p.is_dir() else 'file not found'}; give a CSV file")
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise InputError(f"{label}: cannot read ({err.strerror})") from None
    return raw.decode(detect_encoding(raw, label))


def read_csv(path: str | os.PathLike, label: str | None = None, **kwargs) -> pd.DataFrame:
    """Read a CSV in UTF-8 (BOM or none) or GBK/GB18030 with :func:`pandas.read_csv`.

    Parameters
    ----------
    path : path
    label : str, optional
        How errors name the file (default the path), e.g. ``"--regions r.csv"``.
    **kwargs
        Passed to :func:`pandas.read_csv` (never ``encoding``: it is detected).

    Returns
    -------
    pandas.DataFrame
        Column names stripped of surrounding spaces.
    """
    label = label or os.fspath(path)
    text = decode_text(path, label)
    try:
        frame = pd.read_csv(io.StringIO(text), **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{label}: empty CSV; give a header row and data rows") from None
    except pd.errors.ParserError as err:
        raise InputError(f"{label}: not a valid CSV ({str(err).strip().splitlines()[0]})") from None
    frame.columns = [c.strip() if isinstance(c, str) else c for c in frame.columns]
    return frame


def read_wkt_csv(path: str | os.PathLike, label: str | None = None, crs=None):
    """A CSV whose ``wkt`` column holds each row's geometry, as a GeoDataFrame.

    Parameters
    ----------
    path : path
    label : str, optional
        How errors name the file.
    crs : optional
        The CRS of the WKT coordinates (default WGS84 lon/lat).
    """
    import geopandas as gpd
    import shapely

    label = label or os.fspath(path)
    table = read_csv(path, label)
    wkt = next((c for c in WKT_COLUMNS if c in table.columns), None)
    if wkt is None:
        raise InputError(f"{label}: a CSV needs a wkt column with each row's polygon (WGS84 unless --crs)")
    try:
        geoms = shapely.from_wkt(table[wkt].fillna("").astype(str).to_numpy(), on_invalid="raise")
    except shapely.errors.GEOSException as err:
        raise InputError(
            f"{label}: a {wkt} value is not WKT ({str(err).splitlines()[0]}); "
            "write polygons as POLYGON ((lon lat, ...))"
        ) from None
    return gpd.GeoDataFrame(table.drop(columns=[wkt]), geometry=geoms, crs=crs if crs is not None else 4326)
