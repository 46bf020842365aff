"""planner serve in Debian's Chromium with no network (Playwright driving /usr/bin/chromium; no
browser is downloaded): open the page, add a facility by clicking on the map, see the
coverage table change, save, reload, compare two scenarios."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
# Every host name resolves to nothing and other traffic goes to a closed port: a page that
# needs the internet fails here, as it would on an intranet. Loopback stays reachable.
_OFFLINE = [
    "--no-sandbox",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=127.0.0.1:9",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(session):
    import uvicorn

    from planner.serve.app import create_app

    port = _free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_app(session), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium (.ci/run installs it)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')"
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=_OFFLINE)
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        pg.problems = []
        pg.on("pageerror", lambda err: pg.problems.append(f"page error: {err}"))
        pg.on("console", lambda msg: msg.type == "error" and pg.problems.append(f"console: {msg.text}"))
        pg.on("dialog", lambda d: (pg.problems.append(f"dialog: {d.message}"), d.dismiss()))
        pg.outside = []
        pg.on(
            "request",
            lambda r: "127.0.0.1" not in r.url and not r.url.startswith("data:") and pg.outside.append(r.url),
        )
        yield pg
        browser.close()


def _ready(pg) -> None:
    pg.wait_for_selector("body[data-ready='1']", timeout=60_000)


def _coverage_text(pg) -> str:
    return pg.locator("#coverage tbody").inner_text()


def _click_map(pg, fx: float, fy: float) -> None:
    box = pg.locator("#map").bounding_box()
    pg.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def _wait_status(pg, text: str) -> None:
    pg.wait_for_function(
        "t => document.getElementById('status').textContent.indexOf(t) >= 0", arg=text, timeout=60_000
    )


def test_click_add_save_reload_compare(server, page, session):
    pg = page
    pg.goto(server)
    _ready(pg)
    assert pg.title() == "beijing_haidian_cau — planner serve"
    n_markers = pg.evaluate("document.querySelectorAll('.leaflet-container canvas').length")
    assert n_markers >= 1
    pg.select_option("#category", "clinic")
    before = _coverage_text(pg)
    assert "目标 target ≤ 300 m" in before and "0.0%" in before  # no clinic mapped in the sample
    # Add a clinic by clicking in the middle of the map.
    pg.click("button[data-tool='add']")
    _click_map(pg, 0.5, 0.5)
    _wait_status(pg, "已新增 added")
    after = _coverage_text(pg)
    assert after != before
    assert [e["kind"] for e in session.engine.edits] == ["add_facility"]
    row = session.engine.coverage.query("category == 'clinic' and threshold == 'target'").iloc[0]
    assert f"{100 * row['population_share']:.1f}%" in after
    # Save it, reload the page: the scenario is listed and the edit is still there.
    pg.fill("#scenario-name", "clinic-centre")
    pg.click("#save")
    _wait_status(pg, "已保存 saved")
    pg.reload()
    _ready(pg)
    assert pg.locator("#scenario-list option").all_inner_texts() == ["clinic-centre"]
    assert pg.locator("#edits li").count() == 1
    # A second scenario: undo, save as empty; compare the two.
    pg.click("#undo")
    _wait_status(pg, "已撤销 undone")
    pg.fill("#scenario-name", "empty")
    pg.click("#save")
    _wait_status(pg, "已保存 saved")
    pg.select_option("#compare-a", "empty")
    pg.select_option("#compare-b", "clinic-centre")
    pg.click("#compare")
    _wait_status(pg, "已比较 compared empty → clinic-centre")
    rows = pg.locator("#compare-table tbody tr").all_inner_texts()
    clinic = next(r for r in rows if r.startswith("社区卫生服务站"))
    diff = session.compare("empty", "clinic-centre")["rows"]
    expected = next(r for r in diff if r["key"] == "clinic")["people_newly_within"]
    assert expected > 0 and f"{round(expected):,}" in clinic
    assert pg.problems == [] and pg.outside == []


def test_names_from_data_are_text_not_html(server, page, session):
    pg = page
    session.engine.apply(
        {
            "kind": "add_facility",
            "category": "clinic",
            "lon": 116.3497,
            "lat": 40.0042,
            "name": "<img src=x onerror=alert(1)>",
        }
    )
    pg.goto(server)
    _ready(pg)
    pg.select_option("#category", "clinic")
    pg.click("button[data-tool='view']")
    assert pg.evaluate("document.querySelectorAll('img[src=x]').length") == 0
    assert pg.problems == [] and pg.outside == []


def test_propose_says_why_then_the_pure_model_proposes_and_accept(server, page, session):
    pg = page
    pg.goto(server)
    _ready(pg)
    pg.select_option("#category", "elderly_care")
    before = _coverage_text(pg)
    pg.click("#propose")  # by the standards (default): nothing in this sample, and why
    _wait_status(pg, "建议 0 proposals")
    assert "nothing proposed" in pg.locator("#propose-why").inner_text()
    pg.uncheck("#propose-standards")
    pg.click("#propose")
    _wait_status(pg, "建议 1 proposals")
    assert pg.locator("#propose-why").inner_text() == ""
    pg.click("#proposals button")
    _wait_status(pg, "已采纳 accepted")
    assert [e["kind"] for e in session.engine.edits] == ["add_facility"]
    row = session.engine.coverage.query("category == 'elderly_care' and threshold == 'target'").iloc[0]
    assert row["population_share"] > 0 and f"{100 * row['population_share']:.1f}%" in _coverage_text(pg)
    assert _coverage_text(pg) != before
    assert pg.problems == [] and pg.outside == []
