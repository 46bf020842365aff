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
    code = main(
        ["serve", "--osm", str(ROOT / SAMPLE), "--scenarios", str(tmp_path / "s"), "--no-browser", *args]
    )
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
    assert (
        seen["host"] == "0.0.0.0"
        and len(token) >= 24
        and f"token (needed on every request from another computer): {token}" in out
    )
    client = TestClient(seen["app"], base_url="http://192.168.1.20:8123")
    assert client.get("/api/scenarios").status_code == 403
    assert client.get("/api/scenarios", headers={"X-Planner-Token": token}).status_code == 200


def test_opens_a_saved_scenario(monkeypatch, tmp_path, capsys):
    from planner.serve.state import ScenarioFolder

    ScenarioFolder(tmp_path / "s").save(
        "one",
        {"region": "beijing_haidian_cau"},
        [{"kind": "set_population", "home_id": "way/154079756", "population": 7.0}],
    )
    seen = _start(monkeypatch, tmp_path, "--load", "one")
    session = seen["app"].state.session
    assert session.name == "one" and session.engine.edits[0]["population"] == 7.0
    assert (
        main(
            [
                "serve",
                "--osm",
                str(ROOT / SAMPLE),
                "--scenarios",
                str(tmp_path / "s"),
                "--no-browser",
                "--load",
                "two",
            ]
        )
        == 2
    )
    assert "error: scenario 'two': no file two.geojson" in capsys.readouterr().err


def test_serves_an_audit_folder_with_its_numbers(monkeypatch, tmp_path, capsys):
    """``planner serve DIR`` reads the inputs the audit recorded and serves its coverage."""
    import json

    import pandas as pd
    from starlette.testclient import TestClient

    out = tmp_path / "audit"
    args = ["--categories", "kindergarten,primary_school,supermarket", "--minutes", "5,12"]
    assert (
        main(
            [
                "audit",
                "--osm",
                str(ROOT / SAMPLE),
                "--out",
                str(out),
                "--no-map",
                "--isochrones",
                "none",
                *args,
            ]
        )
        == 0
    )
    inputs = json.loads((out / "summary.json").read_text(encoding="utf-8"))["inputs"]
    assert inputs["osm_path"] == str((ROOT / SAMPLE).resolve()) and inputs["minutes"] == [5, 12]
    assert inputs["categories"] == "kindergarten,primary_school,supermarket" and inputs["mode"] == "walk"
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    assert main(["serve", str(out), "--scenarios", str(tmp_path / "s"), "--no-browser"]) == 0
    state = TestClient(seen["app"], base_url="http://127.0.0.1").get("/api/state").json()
    served = pd.DataFrame(state["tables"]["coverage"] if "tables" in state else state["coverage"])
    written = pd.read_csv(out / "coverage.csv", dtype={"threshold": str}, encoding="utf-8-sig")
    cols = ["category", "threshold"] + [c for c in written.columns if c.endswith(("_within", "_outside"))]
    assert {"category", "threshold", "homes_within", "population_within", "elderly_within"} <= set(cols)
    assert len(written) == 3 * 3 + 3 and written["population_within"].sum() > 0
    served = served[cols].assign(**{c: served[c].round() for c in cols[2:]})  # the CSV holds whole people
    pd.testing.assert_frame_equal(
        served.astype(written[cols].dtypes.to_dict()), written[cols], check_exact=False, rtol=1e-9
    )


def test_serve_folder_refusals(monkeypatch, tmp_path, capsys):
    import json

    def refused(*args) -> str:
        assert main(["serve", *args, "--scenarios", str(tmp_path / "s"), "--no-browser"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        return err

    assert (
        f"error: {tmp_path}: no summary.json; give the output folder of planner audit, or --osm FILE"
        in refused(str(tmp_path))
    )
    assert "give --osm FILE, or an audit's output folder: planner serve DIR" in refused()
    (tmp_path / "summary.json").write_text(json.dumps({"region": "x"}), encoding="utf-8")
    assert "records no inputs (an older audit)" in refused(str(tmp_path))
    gone = tmp_path / "gone.osm.pbf"
    (tmp_path / "summary.json").write_text(
        json.dumps({"inputs": {"osm": "gone.osm.pbf", "osm_path": str(gone)}})
    )
    assert f"the OSM file it records, {gone}, is missing; put it back there, or give --osm FILE" in refused(
        str(tmp_path)
    )
    assert "the folder gives the inputs; leave out --osm, --minutes" in refused(
        str(tmp_path), "--osm", "x", "--minutes", "5"
    )
