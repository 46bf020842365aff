"""Print modules and functions above the project's size and complexity limits.

Limits (issue 21): a module above 800 lines, a function above 80 lines (``def`` to its last
line, docstring included) or above cyclomatic complexity 20 (ruff's C901, McCabe's measure)
needs a written reason:

* a function: a comment ``# size: <reason>`` or ``# complexity: <reason>`` on its ``def``
  line, in the comment lines just above it or among its decorators, or in the first comment
  lines of its body (after the signature or after the docstring);
* a module: a line ``# size: <reason>`` at the top level before its first ``def`` or ``class``.

Prints one line per item above a limit, the explained ones marked ``ok``; exits 1 when any
item has no reason, 0 otherwise.

    python scripts/check_size.py                 # planner/
    python scripts/check_size.py planner/review  # a part of it
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE_MAX_LINES = 800
FUNCTION_MAX_LINES = 80
MAX_COMPLEXITY = 20

_REASON = {"size": re.compile(r"#\s*size:\s*\S"), "complexity": re.compile(r"#\s*complexity:\s*\S")}
_C901 = re.compile(r"`(?P<name>[^`]+)` is too complex \((?P<value>\d+) > \d+\)")


@dataclass
class Finding:
    path: Path
    line: int
    what: str  # "module", "function lines", "complexity"
    name: str
    value: int
    limit: int
    reason: str | None

    def text(self) -> str:
        mark = "ok  " if self.reason else "FAIL"
        where = f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"
        tail = f"  # {self.reason}" if self.reason else ""
        return f"{mark} {where} {self.name}: {self.what} {self.value} > {self.limit}{tail}"


def _python_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    return files


def _reason(lines: list[str], numbers: list[int], kind: str) -> str | None:
    """The text of the first ``# <kind>: reason`` comment on any of the given 1-based lines,
    with the comment lines that continue it."""
    for n in numbers:
        if 1 <= n <= len(lines):
            m = _REASON[kind].search(lines[n - 1])
            if m:
                text = [lines[n - 1][m.start() + 1 :].strip()]
                for line in lines[n:]:
                    more = line.strip()
                    if not more.startswith("#") or any(r.search(more) for r in _REASON.values()):
                        break
                    text.append(more.lstrip("#").strip())
                return " ".join(text)
    return None


def _comment_block(lines: list[str], start: int, step: int) -> list[int]:
    """1-based numbers of the consecutive comment-only lines from ``start`` going by ``step``."""
    out = []
    n = start
    while 1 <= n <= len(lines) and lines[n - 1].lstrip().startswith("#"):
        out.append(n)
        n += step
    return out


def _reason_lines(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[int]:
    """Lines where a function's reason may stand: above it, its signature, its body's first comments."""
    top = min([node.lineno] + [d.lineno for d in node.decorator_list])
    body0 = node.body[0]
    signature = list(range(node.lineno, body0.lineno))
    candidates = _comment_block(lines, top - 1, -1) + signature
    candidates += [
        n for n in range(top, node.lineno) if lines[n - 1].lstrip().startswith("#")
    ]  # among decorators
    candidates += _comment_block(lines, body0.lineno - 1, -1)  # comments between signature and body
    is_docstring = (
        isinstance(body0, ast.Expr)
        and isinstance(body0.value, ast.Constant)
        and isinstance(body0.value.value, str)
    )
    if is_docstring:
        candidates += _comment_block(lines, body0.end_lineno + 1, 1)
    else:
        candidates += _comment_block(lines, body0.lineno, 1)
    return candidates


def _functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method with its qualified name (``Class.method``, ``outer.inner``)."""
    out = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((prefix + child.name, child))
                walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


def _complexities(files: list[Path], limit: int) -> dict[tuple[Path, int], int]:
    """(file, def line) → McCabe complexity, for functions above ``limit``, from ruff's C901."""
    cmd = [
        sys.executable, "-m", "ruff", "check", "--no-cache", "--exit-zero", "--output-format", "json",
        "--select", "C901", "--config", f"lint.mccabe.max-complexity={limit}", *map(str, files),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    except (OSError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", "") or str(exc)
        sys.exit(f"check_size: ruff failed ({stderr.strip()}); install it with pip install -e '.[test]'")
    found = {}
    for item in json.loads(done.stdout or "[]"):
        m = _C901.search(item["message"])
        if m:
            found[(Path(item["filename"]).resolve(), item["location"]["row"])] = int(m["value"])
    return found


def check(
    paths: list[Path],
    module_lines: int = MODULE_MAX_LINES,
    function_lines: int = FUNCTION_MAX_LINES,
    complexity: int = MAX_COMPLEXITY,
) -> list[Finding]:
    """Every module and function of ``paths`` above a limit, with its written reason or None."""
    files = [f.resolve() for f in _python_files(paths)]
    complex_defs = _complexities(files, complexity) if files else {}
    findings: list[Finding] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text, filename=str(path))
        if len(lines) > module_lines:
            first_def = next(
                (
                    n.lineno
                    for n in tree.body
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                ),
                len(lines) + 1,
            )
            header = [n for n in range(1, first_def) if lines[n - 1].startswith("#")]
            findings.append(
                Finding(
                    path,
                    1,
                    "module lines",
                    path.stem,
                    len(lines),
                    module_lines,
                    _reason(lines, header, "size"),
                )
            )
        for name, node in _functions(tree):
            where = _reason_lines(lines, node)
            n_lines = node.end_lineno - node.lineno + 1
            if n_lines > function_lines:
                findings.append(
                    Finding(
                        path,
                        node.lineno,
                        "lines",
                        name,
                        n_lines,
                        function_lines,
                        _reason(lines, where, "size"),
                    )
                )
            value = complex_defs.get((path, node.lineno))
            if value is not None:
                findings.append(
                    Finding(
                        path,
                        node.lineno,
                        "complexity",
                        name,
                        value,
                        complexity,
                        _reason(lines, where, "complexity"),
                    )
                )
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "planner"])
    parser.add_argument("--module-lines", type=int, default=MODULE_MAX_LINES)
    parser.add_argument("--function-lines", type=int, default=FUNCTION_MAX_LINES)
    parser.add_argument("--complexity", type=int, default=MAX_COMPLEXITY)
    args = parser.parse_args(argv)
    findings = check(args.paths, args.module_lines, args.function_lines, args.complexity)
    for f in findings:
        print(f.text())
    unexplained = sum(f.reason is None for f in findings)
    print(f"{len(findings)} above the limits, {unexplained} without a reason")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
