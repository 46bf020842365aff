"""scripts/check_size.py on hand-made modules: what it flags and which comments explain it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_size", ROOT / "scripts" / "check_size.py")
check_size = importlib.util.module_from_spec(_spec)
sys.modules["check_size"] = check_size  # dataclasses look their module up there
_spec.loader.exec_module(check_size)


def _long(name: str, lines: int, before: str = "", first: str = "", docstring: bool = False) -> str:
    """A function of exactly ``lines`` lines (def to last line)."""
    body = ['    """Doc."""'] if docstring else []
    if first:
        body.append(f"    {first}")
    body += [f"    x{i} = {i}" for i in range(lines - 1 - len(body))]
    return (before + "\n" if before else "") + f"def {name}():\n" + "\n".join(body) + "\n"


def _complex(name: str, branches: int, comment: str = "") -> str:
    """A function of cyclomatic complexity ``branches + 1``."""
    body = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(branches))
    return f"def {name}(x):{'  ' + comment if comment else ''}\n{body}    return -1\n"


def _findings(tmp_path, text, **limits):
    path = tmp_path / "mod.py"
    path.write_text(text, encoding="utf-8")
    return {(f.name, f.what): f.reason for f in check_size.check([path], **limits)}


def test_function_lines_at_and_above_the_limit(tmp_path):
    found = _findings(tmp_path, _long("at", 80) + "\n\n" + _long("above", 81))
    assert found == {("above", "lines"): None}


@pytest.mark.parametrize(
    ("before", "first", "docstring"),
    [
        ("# size: one loop over shared state", "", False),  # the comment line above
        ("# size: one loop over shared state\n@staticmethod", "", False),  # above the decorators
        ("@staticmethod\n# size: one loop over shared state", "", False),  # among them
        ("", "# size: one loop over shared state", False),  # the body's first comment
        ("", "# size: one loop over shared state", True),  # after the docstring
    ],
)
def test_a_size_reason_beside_the_def_explains_it(tmp_path, before, first, docstring):
    found = _findings(tmp_path, _long("long", 90, before, first, docstring))
    assert found == {("long", "lines"): "size: one loop over shared state"}


def test_a_reason_far_from_the_def_or_of_the_other_kind_does_not(tmp_path):
    text = "# size: a stray comment\n\nY = 1\n\n" + _long("long", 90, "", "# complexity: not about lines")
    assert _findings(tmp_path, text) == {("long", "lines"): None}


def test_complexity_from_ruff_and_its_reason(tmp_path):
    # Complexity 20 (at the limit), 21 and 22.
    text = (
        _complex("at_limit", 19) + "\n\n" + _complex("explained", 20, "# complexity: a flat dispatch table")
    )
    text += "\n\n" + _complex("unexplained", 21)
    found = _findings(tmp_path, text)
    assert found == {
        ("explained", "complexity"): "complexity: a flat dispatch table",
        ("unexplained", "complexity"): None,
    }


def test_module_lines_and_the_module_reason(tmp_path):
    body = "\n".join(f"X{i} = {i}" for i in range(801)) + "\n"
    assert _findings(tmp_path, body) == {("mod", "module lines"): None}
    explained = "# size: generated tables, one per standard\n" + body
    assert _findings(tmp_path, explained) == {
        ("mod", "module lines"): "size: generated tables, one per standard"
    }


def test_main_exits_1_while_one_is_unexplained(tmp_path, capsys):
    path = tmp_path / "mod.py"
    path.write_text(_long("long", 81), encoding="utf-8")
    assert check_size.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "long: lines 81 > 80" in out and "1 above the limits, 1 without a reason" in out
    path.write_text(_long("long", 81, "# size: measured and kept whole"), encoding="utf-8")
    assert check_size.main([str(path)]) == 0


def test_a_reason_over_several_comment_lines_is_read_whole(tmp_path):
    reason = "# size: one loop whose two steps share\n    # the incidence and its renumbering"
    found = _findings(tmp_path, _long("long", 90, "", reason))
    assert found == {
        ("long", "lines"): "size: one loop whose two steps share the incidence and its renumbering"
    }
