"""planner.cli: the commands, their help, global options in any position, exit codes.

Bad input per command is covered by test_bad_input; the categories listing by
test_categories. Here: what `planner --help` and each command's help offer (and that every
option the README shows exists), where -q/--config may stand, and one run of `site` with -q
before and after the command.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from planner import settings
from planner.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["audit", "demo", "site", "villages", "review", "batch", "categories"]


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_top_level_help_lists_every_command(capsys):
    code, out, _ = _run(["--help"], capsys)
    assert code == 0
    assert "Start with `planner demo`" in out
    listed = re.findall(r"^  (\w+) ", out.split("Commands:")[1], re.M)
    assert listed[: len(COMMANDS)] == COMMANDS  # in this order; later commands may follow
    for option in ("--config", "-q, --quiet"):
        assert option in out


def test_no_command_shows_the_usage_and_exits_2(capsys):
    code, out, err = _run([], capsys)
    assert code == 2 and "Usage: planner [OPTIONS] COMMAND" in out + err


def test_unknown_command_is_one_line(capsys):
    code, out, err = _run(["audti"], capsys)
    assert code == 2 and out == ""
    assert err == "error: No such command 'audti'. Did you mean 'audit'? (see `planner --help`)\n"


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "audit",
            "--osm --out --categories --minutes --mode --homes --facilities --categories-file --boundary "
            "--isochrones --map --no-map",
        ),
        ("demo", "--region --out"),
        (
            "site",
            "--osm --out --category --model --new --minutes --candidates --capacity --method --time-limit "
            "--homes --facilities --boundary --mode --elderly-pace --adult-pace",
        ),
        (
            "villages",
            "--osm --out --raster --town --villages --target --minutes --categories --categories-file",
        ),
        ("review", "--plan --rules --osm --out --categories-file"),
        (
            "batch",
            "--regions --osm --out --task --workers --memory-limit --scheduler --resume --map-indicator "
            "--categories --minutes --category --new --model",
        ),
        ("categories", "--categories-file"),
    ],
)
def test_command_help_names_its_options(command, options, capsys):
    code, out, _ = _run([command, "--help"], capsys)
    assert code == 0
    assert f"Usage: planner {command} [OPTIONS]" in out
    for option in options.split():
        assert re.search(rf"(^|\s|/){re.escape(option)}\b", out), (command, option)


def test_shared_options_read_the_same_in_every_command():
    import typer

    from planner.cli import app

    commands = typer.main.get_command(app).commands
    shared = {
        "--crs": ("audit", "site", "villages", "batch"),
        "--coords": ("audit", "site", "villages", "batch"),
        "--out-coords": ("audit", "site", "villages", "batch"),
        "--population": ("audit", "site", "villages", "batch"),
        "--population-table": ("audit", "site", "villages", "batch"),
        "--mode": ("audit", "site", "batch"),
        "--osm": ("audit", "site", "villages"),
        "--out": ("audit", "site", "villages"),
    }
    for option, names in shared.items():
        seen = set()
        for name in names:
            (param,) = [p for p in commands[name].params if option in p.opts]
            seen.add((param.help, param.default, param.required))
        assert len(seen) == 1, (option, seen)


def _readme_command_lines() -> list[list[str]]:
    """Every `planner <command> ...` line of the README's shell examples, as arguments."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", readme, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("planner "):
                lines.append(shlex.split(line)[1:])
    return lines


def test_every_option_the_readme_shows_exists(capsys):
    lines = _readme_command_lines()
    assert len(lines) >= 20
    assert main(["--help"]) == 0
    commands = set(re.findall(r"^  (\w+) ", capsys.readouterr().out.split("Commands:")[1], re.M))
    helps = {}
    for args in lines:
        command = args[0]
        assert command in commands, args
        if command not in helps:
            assert main([command, "--help"]) == 0
            helps[command] = capsys.readouterr().out
        for arg in args[1:]:
            if arg.startswith("--"):
                assert re.search(rf"(^|\s|/){re.escape(arg)}\b", helps[command]), (command, arg)


def test_quiet_and_config_may_follow_the_command(tmp_path, capsys):
    config = tmp_path / "my.toml"
    config.write_text("walk_speed_mps = 1.2\n", encoding="utf-8")
    settings.progress = True
    code, out, err = _run(["categories", "--config", str(config), "-q"], capsys)
    assert code == 0 and err == "" and out.startswith("kindergarten")
    assert settings.walk_speed_mps == 1.2 and settings.progress is False


def test_a_value_that_looks_like_a_global_flag_stays_the_options_value(tmp_path, capsys):
    settings.progress = True
    out_dir = tmp_path / "o"
    code, _, err = _run(
        ["audit", "--osm", "nanjing_xinjiekou", "--out", str(out_dir), "--minutes", "-q"], capsys
    )
    assert code == 2 and err.startswith("error: --minutes") and err.count("\n") == 1
    assert settings.progress is True  # -q was --minutes' (bad) value, not the global flag
    assert not out_dir.exists()


def test_categories_with_a_user_file(tmp_path, capsys):
    extra = tmp_path / "cats.toml"
    extra.write_text(
        '[[category]]\nkey = "bank"\nname_zh = "银行"\nname_en = "Bank"\nminutes = 12\n'
        'source = "city plan 2024"\nmatch = [{ amenity = "bank" }]\n',
        encoding="utf-8",
    )
    code, out, _ = _run(["categories", "--categories-file", str(extra)], capsys)
    assert code == 0
    bank = next(line for line in out.splitlines() if line.startswith("bank"))
    assert "银行" in bank and "Bank" in bank and "≤ 12 min" in bank
    assert "source: city plan 2024" in out
    assert out.startswith("kindergarten")  # the bundled ones are still listed


def test_site_with_quiet_before_or_after_the_command_gives_the_same_answer(tmp_path, capsys):
    args = [
        "site",
        "--osm",
        "nanjing_xinjiekou",
        "--category",
        "kindergarten",
        "--model",
        "mclp",
        "--new",
        "2",
    ]
    args += ["--minutes", "5", "--no-map"]
    after, before = tmp_path / "after", tmp_path / "before"
    assert main([*args, "--out", str(after), "-q"]) == 0
    assert main(["-q", *args, "--out", str(before)]) == 0
    capsys.readouterr()
    for out_dir in (after, before):
        names = {p.name for p in out_dir.iterdir()}
        assert {"before_after.csv", "sites.gpkg", "summary.json"} <= names and "map.html" not in names
    a = json.loads((after / "summary.json").read_text(encoding="utf-8"))
    b = json.loads((before / "summary.json").read_text(encoding="utf-8"))
    assert a["objective"] == b["objective"] and a["model"] == b["model"] == "mclp"


def test_python_dash_m_planner(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "planner", "categories", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines()[0].startswith("kindergarten")
