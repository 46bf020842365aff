"""Command line: ``planner audit | demo | site | villages | review | batch | categories | rules | serve``.

Thin: parses arguments, calls the package, prints where outputs went. Every user mistake
is an :class:`~planner._errors.InputError`, printed as one line with exit code 2.
"""

from __future__ import annotations

import errno
import sys
import warnings

import typer

from planner import settings
from planner._errors import InputError
from planner.cli._common import app, one_line

try:  # typer ≥ 0.17 carries its own copy of click, whose exceptions its commands raise
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as _click_errors

# Importing the command modules registers their commands on ``app``, in this order (the help
# lists them so): keep it, not alphabetical.
# isort: off
from planner.cli import audit, site, villages, review, batch, listing, serve  # noqa: F401
# isort: on

_GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose", "--excel")
_GLOBAL_OPTIONS = ("--config", "--paper", "--tiles")


def _flag_options() -> set[str]:
    """Options of every command that take no value (--map/--no-map, --resume, --help)."""
    group = typer.main.get_command(app)
    flags = {"--help"}
    for command in [group, *getattr(group, "commands", {}).values()]:
        for param in command.params:
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                flags.update(param.opts)
                flags.update(param.secondary_opts)
    return flags


def _globals_first(argv: list[str]) -> list[str]:
    """Move the global options to the front, so ``planner site ... -q`` works like
    ``planner -q site ...`` (click only reads a group's options before the subcommand)."""
    front: list[str] = []
    rest: list[str] = []
    flags = _flag_options()
    value_next = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if value_next:
            rest.append(arg)  # the value of an option, even when it reads like one: --minutes -q
            value_next = False
        elif arg in _GLOBAL_FLAGS or arg.startswith(tuple(o + "=" for o in _GLOBAL_OPTIONS)):
            front.append(arg)
        elif arg in _GLOBAL_OPTIONS and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
            value_next = arg.startswith("-") and "=" not in arg and arg not in flags
        i += 1
    return front + rest


#: OS errors that come from the machine, not from a bug: a full disk or quota, a file too
#: large, a read-only or forbidden place. They are reported in one line like bad input.
_MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})

#: Settings the global flags set for one run (-v, --excel, --paper, --tiles).
_RUN_SETTINGS = ("solver_log", "excel", "map_paper", "map_tiles")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and return its exit code. User mistakes (bad options, files or
    values) become one line on stderr starting with ``error:`` and exit code 2; so do a full
    disk and a folder that cannot be written. Anything else is a bug and shows its traceback."""
    saved = {k: getattr(settings, k) for k in _RUN_SETTINGS}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line, like the errors
            return _run(argv)
    finally:  # a flag of this run does not carry over to the next main() in the same process
        for k, v in saved.items():
            setattr(settings, k, v)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr: ``warning: ...`` (no source file or code line)."""
    typer.echo(f"warning: {one_line(message)}", err=True)


def _run(argv: list[str] | None) -> int:
    argv = _globals_first(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=argv, prog_name="planner", standalone_mode=False)
    except InputError as err:
        typer.echo(f"error: {one_line(err)}", err=True)
        return 2
    except _click_errors.NoArgsIsHelpError as err:
        err.show()
        return 2
    except _click_errors.ClickException as err:
        ctx = getattr(err, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {one_line(err.format_message())}{hint}", err=True)
        return err.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except OSError as err:
        if err.errno not in _MACHINE_ERRNOS:
            raise
        fix = (
            "free some space or give another --out; nothing was written"
            if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            else "check its permissions or give another --out; nothing was written"
        )
        typer.echo(f"error: {one_line(err.filename or '')}: {err.strerror}; {fix}", err=True)
        return 2
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())


def _console() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())
