"""Injection: no string from data is ever evaluated (issue 18).

A corpus of payloads (Jinja expressions, statements and comments, HTML and script tags, a
``javascript:`` URL, JS string breakouts, an RTL override and a NUL) is put in every text field
that reaches an output: OSM names and tags of facilities, roads, buildings and villages; the
region's file name; categories ``name_zh``/``name_en``; the name and id columns of homes,
facilities and candidates files; a plan's names and properties; a rule pack's titles; batch
region names. The real commands run on them (audit, site, villages, review, batch), then:

- no command crashes, and no payload ran on the server: no file or folder appears, ``{{7*7}}``
  is in the pages as written, the output of ``id`` is not;
- every HTML output, opened in headless Chromium with ``alert``/``prompt``/``confirm`` hooked
  and every layer, tooltip and popup opened, runs no payload and shows each payload as text.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import browser
import pandas as pd
import pytest
from osm_fixtures import UTM, X0, Y0, _to_wgs, square, write_osm
from shapely.geometry import Point, box, mapping

from planner import maps
from planner.cli import main
from planner.maps import escape_html, plain_text

needs_chromium = pytest.mark.skipif(not browser.chromium_available(), reason=browser.SKIP_REASON)


#: Environment variable naming the folder the mkdir payload would create: the payload needs no
#: quotes (they would be escaped in JSON and HTML before a second Jinja pass could run them).
SENTINEL_ENV = "PLANNER_INJECTION_DIR"


def corpus(sentinel: Path) -> list[str]:
    """The payloads; any that ran on the server would create a file or folder in ``sentinel``
    or print the output of ``id``."""
    return [
        "{{7*7}}",
        "{{ lipsum.__globals__.os.mkdir(lipsum.__globals__.os.environ." + SENTINEL_ENV + ") }}",
        "{{ lipsum.__globals__.os.popen(dict(id=1)|first).read() }}",
        "{{ lipsum.__globals__.os.popen('id > " + str(sentinel / "jinja-popen") + "').read() }}",
        "{% raw %}",
        "{# comment #}",
        "{%- for x in range(3) %}{{x}}{% endfor %}",
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(2)>',
        "</script><script>alert(3)</script>",
        "'-alert(4)-'\\",
        "${alert(5)}`",
        "javascript:alert(6)",
        "\u202eexe.txt\u202c",
        "nul\x00byte",
    ]


def xml_safe(payloads: list[str]) -> list[str]:
    """XML (hence OSM) cannot carry NUL: those payloads stay in files of other formats."""
    return [p for p in payloads if "\x00" not in p]


def name_safe(payloads: list[str]) -> list[str]:
    """Payloads usable as a file or region name (no path separator or NUL)."""
    return [p for p in payloads if "/" not in p and "\x00" not in p]


# --------------------------------------------------------------------------------------------
# the helpers


def test_escape_html():
    assert escape_html('"><img src=x onerror=alert(1)>') == "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert escape_html("<script>a('b')</script>") == "&lt;script&gt;a(&#x27;b&#x27;)&lt;/script&gt;"
    assert escape_html("{{7*7}} & {% raw %}") == "{{7*7}} &amp; {% raw %}"  # Jinja syntax is only text
    assert escape_html("nul\x00 esc\x1b tab\t") == "nul\ufffd esc\ufffd tab\t"
    # An RTL override reverses its own text only: the whole value is isolated.
    assert escape_html("\u202eexe.txt") == "\u2068\u202eexe.txt\u2069"
    assert escape_html(7) == "7"


def test_a_map_renders_data_as_text_however_it_is_rendered(tmp_path):
    import folium
    import geopandas as gpd

    sentinel = tmp_path / "made-by-payload"
    name = (
        "{{7*7}}{% raw %}<img src=x onerror=alert(1)>{{ lipsum.__globals__.os.mkdir("
        + repr(str(sentinel))
        + ") }}"
    )
    quote_free = "{{ lipsum.__globals__.os.popen(dict(id=1)|first).read() }}"

    def build():
        m = maps.base_map((116.30, 39.90, 116.31, 39.91))
        maps.add_title(m, name, quote_free)
        maps.add_legend(m, quote_free, [("#000000", name)])
        points = gpd.GeoDataFrame(
            {"name": [name]}, geometry=gpd.points_from_xy([116.305], [39.905]), crs=4326
        )
        maps.add_points(
            m, points, tooltip_columns=["name"], popup_columns=["name"], aliases={"name": name}, name=name
        )
        folium.FeatureGroup(name=quote_free).add_to(m)
        folium.LayerControl().add_to(m)
        return m

    m = build()
    pages = [maps.offline_html(m), maps.offline_html(m)]  # twice: escaped once each time
    build().save(str(tmp_path / "folium_save.html"))
    pages.append((tmp_path / "folium_save.html").read_text(encoding="utf-8"))
    pages.append(build()._repr_html_())  # a notebook's display
    for page in pages:
        assert "{{7*7}}{% raw %}" in page.replace("&amp;", "&").replace("&quot;", '"')
        assert not re.search(r"\buid=\d+\(", page)
    for page in pages[:3]:
        assert '"{{7*7}}{% raw %}\\u0026lt;img' in page  # the layer name, escaped once, as JSON
    assert not sentinel.exists()
    # The map's own names are left as they were.
    assert [c.layer_name for c in m._children.values() if isinstance(c, folium.FeatureGroup)] == [quote_free]


# --------------------------------------------------------------------------------------------
# inputs


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return _to_wgs.transform(X0 + x, Y0 + y)


def _town(path: Path, payloads: list[str]) -> Path:
    """A street along y = 0 (one way per payload name) and one up x = 0; per payload i a
    named apartment block in a named hamlet (a village for ``planner villages``), a facility of
    category ``inj_i`` and a kindergarten south of the street; community centres (village
    service stations) and village committees in some hamlets."""
    payloads = xml_safe(payloads)
    n = len(payloads)
    nodes: dict[int, tuple] = {}
    tags: dict[int, dict] = {}
    ways: list[tuple] = []
    xs = [i * 150.0 for i in range(n)]
    street = []
    for k, x in enumerate(range(-100, int(xs[-1]) + 151, 50)):
        nodes[k + 1] = (float(x), 0.0)
        street.append(k + 1)
    # One way per few nodes, each named with a payload (road names and tags).
    for j, start in enumerate(range(0, len(street) - 1, 4)):
        p = payloads[j % n]
        ways.append((10 + j, street[start : start + 5], {"highway": "residential", "name": p, "ref": p}))
    nodes[501] = (0.0, -300.0)
    ways.append((90, [street[2], 501], {"highway": "footway", "name": payloads[0]}))
    nid, wid = 1000, 100
    for i, (x, p) in enumerate(zip(xs, payloads, strict=True)):
        area_nodes, area = square(nid, x - 60, 20, x + 60, 140)
        house_nodes, house = square(nid + 4, x - 10, 40, x + 10, 60)
        nodes.update(area_nodes)
        nodes.update(house_nodes)
        ways.append((wid, area, {"landuse": "residential", "place": "hamlet", "name": p, "note": p}))
        ways.append(
            (wid + 1, house, {"building": "apartments", "building:levels": "6", "name": p, "addr:street": p})
        )
        nodes[nid + 8] = (x, -20.0)
        tags[nid + 8] = {"amenity": f"inj_{i}", "name": p, "operator": p, "name:en": p, p: "yes"}
        nodes[nid + 9] = (x + 30, -20.0)
        tags[nid + 9] = {"amenity": "kindergarten", "name": p}
        if i % 3 == 0:
            nodes[nid + 10] = (x + 20, 100.0)
            tags[nid + 10] = {"amenity": "community_centre", "name": p}
        if i % 3 == 1:  # a village committee: an administrative village named from it
            nodes[nid + 11] = (x - 20, 100.0)
            tags[nid + 11] = {"amenity": "townhall", "name": f"{p}村村委"}
        nid, wid = nid + 16, wid + 2
    return write_osm(path, nodes, ways, tags)


def _categories_toml(path: Path, payloads: list[str], rural: bool = False) -> Path:
    """One category ``inj_i`` per payload, named with it in Chinese and English."""
    lines = []
    for i, p in enumerate(payloads):
        lines += [
            "[[category]]",
            f'key = "inj_{i}"',
            f"name_zh = {json.dumps(p)}",
            f"name_en = {json.dumps(p + ' en')}",
            "minutes = 10",
            f'match = [{{ amenity = "inj_{i}" }}]',
        ]
        if rural:
            lines += ['level = "village"', 'mode = "walk"']
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _points_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Inputs shared by every command, and the folder a payload that ran would write to."""
    root = tmp_path_factory.mktemp("injection")
    sentinel = root / "sentinel"
    sentinel.mkdir()
    saved = os.environ.get(SENTINEL_ENV)
    os.environ[SENTINEL_ENV] = str(sentinel / "jinja-mkdir")
    payloads = corpus(sentinel)
    stem = "".join(name_safe(payloads)[:3]) + "town"  # the region's name comes from the file's
    osm = _town(root / f"{stem}.osm", payloads)
    cats = _categories_toml(root / "cats.toml", payloads)
    # Homes, facilities and candidates beside the streets, one payload each.
    homes = _points_csv(
        root / "homes.csv",
        [
            dict(zip(("lon", "lat"), _lonlat(i * 100.0, 30.0), strict=True), households=50, home_id=p, name=p)
            for i, p in enumerate(payloads)
        ],
    )
    facilities = _points_csv(
        root / "facilities.csv",
        [
            dict(
                zip(("lon", "lat"), _lonlat(i * 100.0 + 50, -30.0), strict=True),
                category="kindergarten",
                facility_id=f"f{i} {p}",
                name=p,
            )
            for i, p in enumerate(payloads)
        ],
    )
    candidates = _points_csv(
        root / "candidates.csv",
        [
            dict(
                zip(("lon", "lat"), _lonlat(i * 150.0, 200.0), strict=True), candidate_id=f"c{i} {p}", name=p
            )
            for i, p in enumerate(payloads)
        ],
    )
    yield {
        "root": root,
        "sentinel": sentinel,
        "payloads": payloads,
        "osm": osm,
        "cats": cats,
        "homes": homes,
        "facilities": facilities,
        "candidates": candidates,
    }
    if saved is None:
        del os.environ[SENTINEL_ENV]
    else:
        os.environ[SENTINEL_ENV] = saved


def _run(args: list[str]) -> int:
    return main(["-q", *args])


# --------------------------------------------------------------------------------------------
# the commands, once each


@pytest.fixture(scope="module")
def audit_out(inputs):
    out = inputs["root"] / "audit"
    keys = ",".join(f"inj_{i}" for i in range(len(inputs["payloads"]))) + ",kindergarten"
    rc = _run(
        [
            "audit",
            "--osm",
            str(inputs["osm"]),
            "--out",
            str(out),
            "--categories-file",
            str(inputs["cats"]),
            "--categories",
            keys,
            "--facilities",
            str(inputs["facilities"]),
            "--isochrones",
            "all",
        ]
    )
    return rc, out


@pytest.fixture(scope="module")
def audit_homes_out(inputs):
    """Homes from a file (their ids in the homes' popups), kindergartens from OSM and a file."""
    out = inputs["root"] / "audit-homes"
    rc = _run(
        [
            "audit",
            "--osm",
            str(inputs["osm"]),
            "--out",
            str(out),
            "--categories",
            "kindergarten",
            "--homes",
            str(inputs["homes"]),
            "--facilities",
            str(inputs["facilities"]),
        ]
    )
    return rc, out


@pytest.fixture(scope="module")
def site_out(inputs):
    out = inputs["root"] / "site"
    rc = _run(
        [
            "site",
            "--osm",
            str(inputs["osm"]),
            "--out",
            str(out),
            "--category",
            "kindergarten",
            "--model",
            "mclp",
            "--new",
            str(len(inputs["payloads"])),
            "--minutes",
            "1",
            "--homes",
            str(inputs["homes"]),
            "--facilities",
            str(inputs["facilities"]),
            "--candidates",
            str(inputs["candidates"]),
        ]
    )
    return rc, out


@pytest.fixture(scope="module")
def villages_out(inputs):
    out = inputs["root"] / "villages"
    rural = _categories_toml(inputs["root"] / "rural.toml", inputs["payloads"], rural=True)
    rc = _run(["villages", "--osm", str(inputs["osm"]), "--out", str(out), "--categories-file", str(rural)])
    return rc, out


def _plan(path: Path, payloads: list[str]) -> Path:
    """An estate over the first blocks, one facility per payload (category inj_i, named and
    numbered with it), every property a payload."""

    def geom(g):
        from shapely import affinity

        return mapping(affinity.translate(g, X0, Y0))

    feats = [
        {
            "type": "Feature",
            "geometry": geom(box(-100, 10, 800, 300)),
            "properties": {
                "role": "estate",
                "households": 800,
                "name": payloads[0],
                "note": payloads[1],
                "level": "5min",
            },
        }
    ]
    for i, p in enumerate(payloads):
        feats.append(
            {
                "type": "Feature",
                "geometry": geom(Point(-50 + i * 50, 150)),
                "properties": {
                    "role": "facility",
                    "category": f"inj_{i}",
                    "floor_area_m2": 100,
                    "land_area_m2": 150,
                    "name": p,
                    "facility_id": f"p{i} {p}",
                    "note": p,
                },
            }
        )
    feats.append(
        {
            "type": "Feature",
            "geometry": geom(box(0, 250, 100, 280)),
            "properties": {
                "role": "facility",
                "category": "inj_0",
                "floor_area_m2": 50,
                "name": payloads[-1],
                "facility_id": "polygon " + payloads[2],
            },
        }
    )
    fc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:{UTM}"}},
        "features": feats,
    }
    path.write_text(json.dumps(fc), encoding="utf-8")
    return path


def _pack(path: Path, payloads: list[str]) -> Path:
    """A rule pack whose titles, clauses, notes and units are payloads."""
    j = json.dumps
    text = [
        (
            f'[pack]\nid = "inj-pack"\ntitle_zh = {j(payloads[0])}\ntitle_en = {j(payloads[6])}\n'
            f"source = {j(payloads[7])}\n"
        )
    ]
    for i, p in enumerate(payloads):
        text.append(
            f'[[rule]]\nid = "inj.{i}"\ntitle_zh = {j(p)}\ntitle_en = {j(p + " en")}\nclause = {j(p)}\n'
            f'note = {j(p)}\nconfirmed = false\nstrength = "mandatory"\n'
            f'measure = "service_radius_share"\ncategory = "inj_{i}"\nthreshold = {100 + i}\nunit = "m"\n'
        )
    path.write_text("\n".join(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def review_out(inputs):
    out = inputs["root"] / "review"
    plan = _plan(inputs["root"] / "plan.geojson", inputs["payloads"])
    pack = _pack(inputs["root"] / "pack.toml", inputs["payloads"])
    rc = _run(
        [
            "review",
            "--plan",
            str(plan),
            "--out",
            str(out),
            "--rules",
            str(pack),
            "--osm",
            str(inputs["osm"]),
            "--categories-file",
            str(inputs["cats"]),
        ]
    )
    return rc, out


@pytest.fixture(scope="module")
def batch_out(inputs):
    root = inputs["root"]
    # Region names name folders: no "/", so this payload would make PWNED in the working
    # directory, a folder of its own while the batch runs.
    workdir = root / "batch-cwd"
    workdir.mkdir()
    names = [
        "{{7*7}}{% raw %}{# c #}",
        '"><img src=x onerror=alert(7)>{{ lipsum.__globals__.os.mkdir(dict(PWNED=1)|first) }}',
        "\u202eRTL ${alert(8)}`'-alert(9)-'",
    ]
    regions = _points_csv(root / "regions.csv", [{"name": n, "osm": str(inputs["osm"])} for n in names])
    out = root / "batch"
    keys = ",".join(f"inj_{i}" for i in range(len(inputs["payloads"])))
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        rc = _run(
            [
                "batch",
                "--regions",
                str(regions),
                "--out",
                str(out),
                "--workers",
                "1",
                "--memory-limit",
                "2GiB",
                "--categories-file",
                str(inputs["cats"]),
                "--categories",
                keys,
            ]
        )
    finally:
        os.chdir(cwd)
    return rc, out, names


ALL = ["audit_out", "audit_homes_out", "site_out", "villages_out", "review_out", "batch_out"]


def _pages(fixture: str, result) -> list[Path]:
    out = result[1]
    if fixture == "review_out":
        return [out / "review.html", out / "review_map.html"]
    if fixture == "batch_out":
        return [out / "map.html", *sorted((out / "regions").glob("*/map.html"))]
    return [out / "map.html"]


# --------------------------------------------------------------------------------------------
# server side: no crash, nothing evaluated


@pytest.mark.parametrize("fixture", ALL)
def test_commands_finish_and_evaluate_nothing(fixture, request, inputs):
    result = request.getfixturevalue(fixture)
    rc = result[0]
    # review: 1 = some rule fails (the plan is not meant to pass); everything else: 0.
    assert rc == (1 if fixture == "review_out" else 0)
    pages = _pages(fixture, result)
    if fixture == "batch_out":
        assert len(pages) == 1 + len(result[2])
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "{{7*7}}" in text, page.name  # as written, not 49
        assert not re.search(r"\buid=\d+\(\w+\) gid=", text), page.name  # no output of `id`
    # Nothing a payload would have made: no file in the sentinel folder, no PWNED anywhere.
    assert list(inputs["sentinel"].iterdir()) == []
    assert not list(inputs["root"].rglob("PWNED")) and not Path("PWNED").exists()


def test_region_and_file_names_kept_as_text(audit_out, batch_out, inputs):
    summary = json.loads((audit_out[1] / "summary.json").read_text(encoding="utf-8"))
    assert summary["region"] == inputs["osm"].stem
    folders = sorted(p.name for p in (batch_out[1] / "regions").iterdir())
    assert folders == sorted(batch_out[2])
    table = pd.read_csv(batch_out[1] / "indicators.csv")
    assert set(batch_out[2]) <= set(table["region"])


# --------------------------------------------------------------------------------------------
# browser side: open everything, nothing runs, payloads show as text

# Tick every layer of the layer control (the audit map builds a category's homes when it is
# shown), then build the content of every tooltip and popup the way Leaflet does (a function
# of the feature, or HTML), into the page, and keep its text.
_OPEN_ALL = """
var texts = [];
window.__plannerTexts = texts;
document.querySelectorAll('.leaflet-control-layers').forEach(function (c) {
  texts.push(c.textContent);
});
document.querySelectorAll('.leaflet-control-layers-overlays input').forEach(function (input) {
  if (!input.checked) input.click();  // as a user ticks it
});
var box = document.createElement('div');
document.body.appendChild(box);
function show(overlay, source) {
  var content = overlay._content;
  if (typeof content === 'function') content = content(source, overlay);
  var div = document.createElement('div');
  if (typeof content === 'string') div.innerHTML = content; else if (content) div.appendChild(content);
  box.appendChild(div);
  texts.push(div.textContent);
}
function visit(layer) {
  var children = [];
  if (layer.eachLayer) layer.eachLayer(function (c) { children.push(c); });
  [layer.getTooltip && layer.getTooltip(), layer.getPopup && layer.getPopup()].forEach(function (o) {
    if (!o) return;
    (children.length ? children.slice(0, 400) : [layer]).forEach(function (c) { show(o, c); });
  });
}
maps.forEach(function (m) { m.eachLayer(visit); });  // every layer on the map, groups' members too
"""
_TEXTS = "return {texts: window.__plannerTexts || [], body: document.body.innerText};"


@pytest.fixture(scope="module")
def opened(request):
    """Each page of each command opened once: path → browser result."""
    if not browser.chromium_available():
        pytest.skip(browser.SKIP_REASON)
    cache: dict[Path, dict] = {}

    def open_page(page: Path) -> dict:
        if page not in cache:
            cache[page] = browser.open_in_browser(page, prepare_js=_OPEN_ALL, extra_js=_TEXTS, timeout_s=60)
        return cache[page]

    return open_page


def _shown(result: dict) -> str:
    extra = result["extra"] or {}
    return "\n".join([extra.get("body", ""), *extra.get("texts", []), *result["layer_names"]])


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("fixture", ALL)
def test_pages_run_no_payload(fixture, request, opened):
    for page in _pages(fixture, request.getfixturevalue(fixture)):
        res = opened(page)
        assert res["dialogs"] == [], page
        assert res["errors"] == [], (
            page
        )  # an injected <img src=x> would fail to load, a </script> break the page
        assert res["external"] == [], page
        assert res["maps"] >= (0 if page.name == "review.html" else 1)


def _as_shown(payload: str) -> str:
    """A payload as a page shows it: controls as U+FFFD (the isolate planner puts around text
    with an RTL override may enclose more than the payload, e.g. a whole title)."""
    return plain_text(payload).removeprefix("\u2068").removesuffix("\u2069")


def _expect(result: dict, payloads: list[str], page: Path) -> None:
    shown = _shown(result)
    missing = [p for p in payloads if _as_shown(p) not in shown]
    assert missing == [], f"{page}: not shown as text: {missing}"


@pytest.mark.browser
@needs_chromium
def test_audit_map_shows_payloads_as_text(audit_out, audit_homes_out, inputs, opened):
    payloads = inputs["payloads"]
    res = opened(audit_out[1] / "map.html")
    # Category names (layer control, tooltip labels), OSM and file facility names and ids
    # (tooltips, popups, the homes' "nearest facility"), the region's name (title).
    _expect(res, payloads, audit_out[1])
    assert _as_shown(inputs["osm"].stem) in res["extra"]["body"]
    assert len(res["layer_names"]) == len(payloads) + 2  # a category each, kindergartens and roads
    # Homes from a file: their ids in the homes' popups.
    _expect(opened(audit_homes_out[1] / "map.html"), payloads, audit_homes_out[1])


@pytest.mark.browser
@needs_chromium
def test_site_map_shows_payloads_as_text(site_out, inputs, opened):
    # Home ids, existing facility names (OSM and file), candidate ids of the proposed sites.
    _expect(opened(site_out[1] / "map.html"), inputs["payloads"], site_out[1])


@pytest.mark.browser
@needs_chromium
def test_villages_map_shows_payloads_as_text(villages_out, inputs, opened):
    # Village names, station and facility names, category names (OSM: no NUL).
    _expect(opened(villages_out[1] / "map.html"), xml_safe(inputs["payloads"]), villages_out[1])


@pytest.mark.browser
@needs_chromium
def test_review_pages_show_payloads_as_text(review_out, inputs, opened):
    payloads = inputs["payloads"]
    report = opened(review_out[1] / "review.html")
    _expect(report, payloads, review_out[1] / "review.html")  # rule titles, category names, estate name
    _expect(opened(review_out[1] / "review_map.html"), payloads, review_out[1] / "review_map.html")


@pytest.mark.browser
@needs_chromium
def test_batch_map_shows_region_and_category_names_as_text(batch_out, inputs, opened):
    res = opened(batch_out[1] / "map.html")
    _expect(res, batch_out[2], batch_out[1] / "map.html")  # region names in the tooltips
    _expect(res, [inputs["payloads"][0]], batch_out[1] / "map.html")  # the indicator's category name
    for name in batch_out[2]:  # each region's own map: its name in the title
        page = batch_out[1] / "regions" / name / "map.html"
        _expect(opened(page), [name], page)
