"""Quiet and honest console: the solver's banner only with -v, `planner rules`, and outputs
citing the standards' clauses rather than a document users do not have."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

from planner.cli import main
from planner.rules import list_rulepacks, load_rulepack

CAU = str(SAMPLES / "beijing_haidian_cau.osm.pbf")


def _site(tmp_path: Path, *flags: str) -> str:
    """stdout of ``planner site`` (mclp: solved with HiGHS) in a fresh process: HiGHS prints
    its banner at the first solver a process creates."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "planner",
            *flags,
            "site",
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
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_highs_banner_and_log_only_with_verbose(tmp_path):
    quiet = _site(tmp_path / "q", "-q")
    assert "HiGHS" not in quiet and quiet.startswith("幼儿园 Kindergarten: mclp")
    loud = _site(tmp_path / "v", "-q", "-v")
    assert "Running HiGHS" in loud and "Coefficient ranges" in loud  # the banner and the solver's log
    assert "幼儿园 Kindergarten: mclp" in loud


def test_rules_lists_every_bundled_pack(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for pack_id in list_rulepacks():
        pack = load_rulepack(pack_id)
        confirmed = sum(r.confirmed for r in pack.rules)
        assert f"{pack.id:<32} {pack.title_zh}  {pack.title_en}" in out
        assert (
            f"{len(pack.rules)} rules, {confirmed} confirmed ({len(pack.rules) - confirmed} to confirm)"
            in out
        )
    assert "scope: provincial (湖北省 Hubei)" in out
    assert main(["rules", "--rules", "gb50180-2018"]) == 0
    assert capsys.readouterr().out.count("source:") == 1


def test_rules_unknown_pack_is_one_line(capsys):
    assert main(["rules", "--rules", "no-such-pack"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --rules: unknown rule pack 'no-such-pack'") and err.count("\n") == 1


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "planner" / "data").glob("*.toml")) + sorted((ROOT / "planner" / "rules").glob("*.toml")),
    ids=lambda p: p.name,
)
def test_data_cite_clauses_not_the_facts_file(path):
    """Sources shown in outputs name the standard and clause, never planner's internal notes."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    cited = [s for s in _strings(data) if "facts" in s.lower()]
    assert cited == []


def test_bad_paper_and_tiles_are_one_line(capsys, tmp_path):
    assert main(["--paper", "a5", "categories"]) == 2
    assert capsys.readouterr().err == "error: --paper a5: give a4 or a3\n"
    assert main(["categories", "--tiles", "tiles.example"]) == 2
    assert capsys.readouterr().err.startswith("error: --tiles tiles.example: give an XYZ URL template")
