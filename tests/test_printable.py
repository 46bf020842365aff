"""Printable maps (planner/maps/printable.py): map.png and map.pdf beside map.html for audit,
site and villages; A4/A3; plain-text labels; base tiles only from a URL given (served here
from 127.0.0.1)."""

from __future__ import annotations

import http.server
import io
import shutil
import subprocess
import threading
import warnings
from typing import ClassVar

import browser
import geopandas as gpd
import pytest
import shapely
from conftest import SAMPLES
from PIL import Image

from planner.cli import main
from planner.maps import printable
from planner.maps.printable import PrintLayer, nice_length_m, write_printable

CAU = str(SAMPLES / "beijing_haidian_cau.osm.pbf")
ZWM = str(SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf")
A4_PX = (int(11.69 * 150), int(8.27 * 150))  # matplotlib truncates a size in pixels
A3_PX = (int(16.54 * 150), int(11.69 * 150))


def _pdf_text(path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _pdf_pages(path) -> int:
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo (poppler-utils) is not installed")
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def _check_pages(out, size_px, *texts):
    png, pdf = out / "map.png", out / "map.pdf"
    assert (out / "map.html").exists()
    assert 30_000 < png.stat().st_size < 5_000_000 and 10_000 < pdf.stat().st_size < 5_000_000
    with Image.open(png) as im:
        assert im.size == size_px
    assert _pdf_pages(pdf) == 1
    text = _pdf_text(pdf)
    for t in ("图例 Legend", *texts):
        assert t in text, t


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """audit, site (A3) and villages runs, with their maps."""
    tmp = tmp_path_factory.mktemp("printable")
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
                "--out",
                str(tmp / "audit"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "site",
                "--no-standards",  # the pure model: three sites to label
                "--osm",
                CAU,
                "--category",
                "kindergarten",
                "--model",
                "mclp",
                "--new",
                "3",
                "--minutes",
                "5",
                "--paper",
                "a3",
                "--out",
                str(tmp / "site"),
            ]
        )
        == 0
    )
    assert main(["villages", "--osm", ZWM, "--out", str(tmp / "villages")]) == 0
    return tmp


def test_audit_site_villages_write_printable_maps(outputs):
    _check_pages(outputs / "audit", A4_PX, "生活圈 life-circle audit", "道路 Roads", "米 m")
    _check_pages(
        outputs / "site",
        A3_PX,
        "幼儿园 Kindergarten 选址 siting",
        "拟建 Proposed sites (3)",
        "#1",
        "#2",
        "#3",
    )
    _check_pages(
        outputs / "villages", A4_PX, "乡村生活圈 rural life circles", "马家门", "漾口"
    )  # village names


_BOXES = """
var title = Array.from(document.querySelectorAll('.planner-box')).find(e => e.style.top === '10px');
var control = document.querySelector('.leaflet-control-layers');
var a = title.getBoundingClientRect(), b = control.getBoundingClientRect();
var overlap = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
return {overlap: overlap, labels: Array.from(document.querySelectorAll('.planner-label')).map(e => e.textContent.trim())};
"""


@pytest.mark.browser
@pytest.mark.skipif(not browser.chromium_available(), reason=browser.SKIP_REASON)
def test_pdf_fonts_are_outlines_with_their_text(outputs):
    """The CJK font goes into the PDF as glyph outlines (Type 3) with a Unicode map, so the
    text stays searchable and poppler finds nothing malformed (a TrueType embedding of these
    CFF fonts made it warn of a mismatch)."""
    if shutil.which("pdffonts") is None:
        pytest.skip("pdffonts (poppler-utils) is not installed")
    run = subprocess.run(["pdffonts", str(outputs / "audit" / "map.pdf")], capture_output=True, text=True)
    rows = run.stdout.splitlines()[2:]
    assert rows and all(" Type 3 " in row for row in rows), run.stdout
    assert all(row.split()[-5:-2] == ["yes", "yes", "yes"] for row in rows), run.stdout  # emb sub uni
    assert "Mismatch" not in run.stderr
    assert "生活圈" in _pdf_text(outputs / "audit" / "map.pdf")


def test_interactive_maps_label_sites_and_villages(outputs):
    site = browser.open_in_browser(outputs / "site" / "map.html", extra_js=_BOXES)
    assert site["errors"] == [] and site["extra"]["labels"] == ["#1", "#2", "#3"]
    assert not site["extra"]["overlap"]  # the title box stays clear of the layer control
    villages = browser.open_in_browser(outputs / "villages" / "map.html", extra_js=_BOXES)
    assert villages["errors"] == [] and not villages["extra"]["overlap"]
    assert {"马家门", "漾口"} <= set(villages["extra"]["labels"])
    assert "—" not in villages["extra"]["labels"]  # an unnamed village shows its id


def test_no_map_writes_no_printable_map(tmp_path):
    out = tmp_path / "a"
    assert (
        main(
            [
                "audit",
                "--osm",
                CAU,
                "--categories",
                "kindergarten",
                "--isochrones",
                "none",
                "--no-map",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert not (out / "map.png").exists() and not (out / "map.pdf").exists()


def _square(lon: float, lat: float, name: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": [name]}, geometry=[shapely.box(lon, lat, lon + 0.01, lat + 0.01)], crs=4326
    )


def test_data_text_is_not_mathtext(tmp_path):
    layer = PrintLayer(_square(116.35, 40.0, "x"), "area", "#1a9850", [("#1a9850", "村 $x^2$ village")])
    write_printable(tmp_path, "标题 $\\alpha$ title", [layer], labels=[(116.355, 40.005, "价格 $5 and $6")])
    text = _pdf_text(tmp_path / "map.pdf")
    assert "标题 $\\alpha$ title" in text and "价格 $5 and $6" in text and "村 $x^2$ village" in text


def test_scale_bar_lengths():
    assert nice_length_m(1000) == 200
    assert nice_length_m(2600) == 500
    assert nice_length_m(12_000) == 2000
    assert nice_length_m(4999) == 500
    assert nice_length_m(7) == 1


def test_missing_cjk_font_warns_once(monkeypatch, tmp_path):
    from matplotlib import font_manager

    monkeypatch.setattr(
        font_manager.fontManager,
        "ttflist",
        [f for f in font_manager.fontManager.ttflist if "CJK" not in f.name and "Hei" not in f.name],
    )
    monkeypatch.setattr(printable, "_CJK_FAMILIES", ())
    monkeypatch.setattr(printable, "_font_warned", False)
    with pytest.warns(UserWarning, match="no CJK font found"):
        assert printable.cjk_font() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert printable.cjk_font() is None  # once


class _Tiles(http.server.BaseHTTPRequestHandler):
    requested: ClassVar[list[str]] = []

    def do_GET(self):
        buf = io.BytesIO()
        Image.new("RGB", (256, 256), (255, 0, 255)).save(buf, format="PNG")
        _Tiles.requested.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(buf.getvalue())

    def log_message(self, *args):
        pass


def test_tiles_from_a_given_url(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
        layer = PrintLayer(
            _square(116.35, 40.0, "x"), "area", "#1a9850", [("#1a9850", "村 village")], alpha=0.3
        )
        write_printable(tmp_path, "tiles", [layer], tiles=url)
    finally:
        server.shutdown()
    assert _Tiles.requested and all(p.endswith(".png") for p in _Tiles.requested)
    with Image.open(tmp_path / "map.png") as im:
        colours = {c for _, c in im.convert("RGB").getcolors(maxcolors=1 << 20)}
    assert (255, 0, 255) in colours  # the served tile is drawn under the layers
    assert "底图 Tiles: 127.0.0.1" in _pdf_text(tmp_path / "map.pdf")


def test_no_tiles_by_default(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no tile may be fetched without --tiles")

    monkeypatch.setattr(printable, "_basemap", refuse)
    write_printable(tmp_path, "offline", [PrintLayer(_square(116.35, 40.0, "x"), "area", "#1a9850")])
    assert (tmp_path / "map.png").exists()


def test_unreachable_tiles_warn_in_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png"
    out = tmp_path / "a"
    assert (
        main(
            [
                "audit",
                "--osm",
                CAU,
                "--categories",
                "kindergarten",
                "--isochrones",
                "none",
                "--tiles",
                url,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and warned[0].startswith(f"warning: --tiles {url}: no base tiles drawn")
    assert "底图获取失败 base tiles unavailable" in _pdf_text(out / "map.pdf")
    assert url.split("{z}")[0] in (out / "map.html").read_text(encoding="utf-8")  # map.html asks for them too


@pytest.mark.parametrize("n_lines", [3, 6_000])  # vector paths, and one image above 5,000 lines
def test_line_layer_is_drawn_where_its_lines_are(tmp_path, n_lines):
    """Streets drawn as one path: pure red pixels along the lines (horizontal, in the lower
    half of the square), none in the upper half where there is no line."""
    import numpy as np

    lats = 40.0 + 0.001 + 0.003 * np.arange(n_lines) / n_lines
    lines = gpd.GeoDataFrame(
        geometry=[shapely.LineString([(116.35, y), (116.36, y)]) for y in lats], crs=4326
    )
    ring = gpd.GeoDataFrame(geometry=[shapely.box(116.351, 40.006, 116.359, 40.009)], crs=4326)
    layers = [
        PrintLayer(_square(116.35, 40.0, "x"), "area", "#ffffff", edge="#ffffff"),
        PrintLayer(lines, "line", "#ff0000", [("#ff0000", "道路 Roads")], width=1.0, fit=False),
        PrintLayer(ring, "line", "#0000ff", width=1.0, fit=False),  # a polygon's ring as a line
    ]
    write_printable(tmp_path, "lines", layers)
    image = np.asarray(Image.open(tmp_path / "map.png").convert("RGB")).astype(int)
    image = image[:, : int(0.68 * image.shape[1])]  # the map's axes, left of the legend
    red = (image[:, :, 0] > 200) & (image[:, :, 1] < 60) & (image[:, :, 2] < 60)
    blue = (image[:, :, 2] > 200) & (image[:, :, 0] < 60) & (image[:, :, 1] < 60)
    rows = np.flatnonzero(red.any(axis=1))
    blue_rows = np.flatnonzero(blue.any(axis=1))
    assert len(rows) and len(blue_rows)
    # Image rows grow southwards: every red row lies below (south of) every blue row.
    assert rows.min() > blue_rows.max()
    assert "道路 Roads" in _pdf_text(tmp_path / "map.pdf")


def test_a_citys_printable_maps_drawn_in_a_forked_process_match_the_in_process_ones(tmp_path, monkeypatch):
    """Above ``map_detail_max_homes`` the printable maps are drawn in a forked process while
    map.html is written: the same page as when drawn in this process."""
    from planner import settings
    from planner._parallel import can_fork
    from planner.audit import audit
    from planner.sources import load_region

    if not can_fork():
        pytest.skip("needs two cores and the fork start method")
    monkeypatch.setattr(settings, "map_detail_max_homes", 10)  # the CAU sample as a "city"
    result = audit(load_region(CAU), categories="kindergarten,primary_school", progress=False)
    result.write(tmp_path / "forked")
    monkeypatch.setattr(settings, "sweep_workers", 1)  # no forking: drawn here
    result.write(tmp_path / "here")
    forked, here = (Image.open(tmp_path / d / "map.png") for d in ("forked", "here"))
    assert forked.size == here.size == A4_PX
    assert forked.tobytes() == here.tobytes()
    assert "生活圈 life-circle audit" in _pdf_text(tmp_path / "forked" / "map.pdf")
