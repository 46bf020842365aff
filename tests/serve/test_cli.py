"""``planner serve`` on the command line: bad options in one line (exit 2), and the start:
loopback with no token by default, a printed token for any other address."""

from __future__ import annotations

import pytest

from planner.cli import main

from .helpers import ROOT, SAMPLE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "error: --port 0: give a port from 1 to 65535"),
        (["--minutes", "5,x"], "error: --minutes '5,x': give whole minutes"),
        (["--categories", "casino"], "unknown category 'casino'"),
        (["--mode", "fly"], "--mode 'fly'"),
    ],
)
def test_bad_options_in_one_line(args, message, capsys, tmp_path):
    code = main(["serve", "--osm", str(ROOT / SAMPLE), "--scenarios", str(tmp_path), "--no-browser", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def _start(monkeypatch, tmp_path, *args) -> dict:
    """Run ``planner serve`` with uvicorn.run replaced: what it would have served, and how."""
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    code = main(["serve", "--osm", str(ROOT / SAMPLE), "--scenarios", str(tmp_path / "s"), "--no-browser", *args])
    assert code == 0
    return seen


def test_loopback_by_default_and_a_token_beyond(monkeypatch, tmp_path, capsys):
    from starlette.testclient import TestClient

    seen = _start(monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    assert "http://127.0.0.1:8000/" in out and "token" not in out
    seen = _start(monkeypatch, tmp_path, "--host", "0.0.0.0", "--port", "8123")
    out = capsys.readouterr().out
    token = out.split("?token=")[1].split()[0]
    assert seen["host"] == "0.0.0.0" and len(token) >= 24 and f"token (needed on every request from another computer): {token}" in out
    client = TestClient(seen["app"], base_url="http://192.168.1.20:8123")
    assert client.get("/api/scenarios").status_code == 403
    assert client.get("/api/scenarios", headers={"X-Planner-Token": token}).status_code == 200


def test_opens_a_saved_scenario(monkeypatch, tmp_path, capsys):
    from planner.serve.state import ScenarioFolder

    ScenarioFolder(tmp_path / "s").save(
        "one", {"region": "beijing_haidian_cau"}, [{"kind": "set_population", "home_id": "way/154079756", "population": 7.0}]
    )
    seen = _start(monkeypatch, tmp_path, "--load", "one")
    session = seen["app"].state.session
    assert session.name == "one" and session.engine.edits[0]["population"] == 7.0
    assert main(["serve", "--osm", str(ROOT / SAMPLE), "--scenarios", str(tmp_path / "s"), "--no-browser", "--load", "two"]) == 2
    assert "error: scenario 'two': no file two.geojson" in capsys.readouterr().err
