"""Atomic, umask-respecting outputs: everything is written beside the target and moved into place at the end.

Scratch files and folders are named ``.<name>.tmp-<host>-<pid>-<random>`` (batch work folders
``.<name>.partial-…``): a run that is killed leaves them behind, and the next run into the
same folder removes those whose process is gone (never those of a run still going). Files and
folders are created with the modes a plain ``open``/``mkdir`` gives under the user's umask.
An output folder is replaced whole; planner only replaces a folder it wrote itself (one that
holds its :data:`MARKER` file, or only files planner writes) or an empty one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from planner._errors import InputError

#: File in every output folder planner writes: says the folder is planner's to replace.
MARKER = ".planner"
# Outputs of planner versions that wrote no marker: a folder holding only these (summary.json
# among them) is planner's.
_KNOWN_OUTPUTS = frozenset(
    {
        "summary.json",
        "homes.gpkg",
        "coverage.csv",
        "map.html",
        "sites.gpkg",
        "before_after.csv",
        "villages.gpkg",
        "indicators.csv",
        "proposed_stations.gpkg",
        "review.json",
        "review.html",
        "review_map.html",
        "failures.csv",
        "failures.log",
        "regions",
        "_extracts",
    }
)
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_SCRATCH = re.compile(
    r"^\.(?P<base>.+)\.(?:tmp|partial)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}(?:\.tmp)?$"
)


def scratch_name(name: str, kind: str = "tmp") -> str:
    """Hidden name for work in progress on ``name``: ``.<name>.<kind>-<host>-<pid>-<random>``.

    The host and process id let a later run tell a leftover of a killed run (its process is
    gone) from the work of a run still going (see :func:`remove_leftovers`).
    """
    return f".{name}.{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    except OSError:  # e.g. Windows: cannot tell, so keep its files
        return False
    with contextlib.suppress(OSError, IndexError):  # a killed child not yet reaped is gone too
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] == "Z"
    return False


def remove_leftovers(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove scratch files and folders in ``folder`` whose process (on this host) is gone.

    Parameters
    ----------
    folder : path
    name : str, optional
        Only leftovers of this output name (and of work nested under it, such as the
        scratch folder of a batch region's ``.<name>.partial-…`` folder).

    Returns
    -------
    list of Path
        What was removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _SCRATCH.match(entry.name)
        if m is None or m["host"] != _HOST or int(m["pid"]) == os.getpid():
            continue
        if name is not None and m["base"] != name and not m["base"].startswith(f".{name}."):
            continue
        if not _process_gone(int(m["pid"])):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(path)
    return removed


def is_planner_folder(path: str | os.PathLike) -> bool:
    """True for a folder planner may replace: empty, holding :data:`MARKER`, or only planner's
    outputs, a ``summary.json`` among them (what planner wrote before it left a marker)."""
    folder = Path(path)
    names = {p.name for p in folder.iterdir() if not _SCRATCH.match(p.name)}
    return not names or MARKER in names or ("summary.json" in names and names <= _KNOWN_OUTPUTS)


def check_out_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check that ``path`` can become an output folder, before any work; return it resolved.

    Raises
    ------
    InputError
        ``path`` is a file, a folder with files planner did not write, or in a folder that
        cannot be written.
    """
    out = Path(path).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {path}: is a file; give a folder (planner writes its outputs into it)")
    if out.is_dir():
        try:
            ours = is_planner_folder(out)
        except OSError as err:
            raise InputError(
                f"{option} {path}: cannot read it ({err.strerror}); give a folder you can write to"
            ) from None
        if not ours:
            raise InputError(
                f"{option} {path}: holds files planner did not write, and planner replaces the whole "
                "folder; give a new or empty folder"
            )
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{option} {path}: {parent} is a file, not a folder; give a path inside a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(
            f"{option} {path}: cannot write in {parent} (permission denied); give a folder you can write to"
        )
    return out


@contextlib.contextmanager
def atomic_dir(out_dir: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    """Yield a scratch folder beside ``out_dir``; on success it replaces ``out_dir`` whole.

    On any exception (and on SIGTERM, which becomes ``SystemExit``) the scratch folder is
    removed and ``out_dir`` is left as it was, so a failed run never leaves half-written
    outputs. Readers see the old folder or the new one, never a mix. Leftovers of killed runs
    in the same parent folder are removed first. A full disk is an :class:`InputError`.

    Raises
    ------
    InputError
        ``out_dir`` cannot be an output folder (see :func:`check_out_dir`), or the disk is full.
    """
    out = check_out_dir(out_dir, option)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(out.parent)
        tmp = out.parent / scratch_name(out.name)
        tmp.mkdir()  # 0o777 less the umask, as any folder the user makes
    except OSError as err:
        converted = _output_error(err, out, option)
        if converted is err:
            raise
        raise converted from None
    try:
        with terminate_as_exit():
            yield tmp
            (tmp / MARKER).write_text(
                "planner output folder: planner replaces this whole folder when it writes here again\n",
                encoding="utf-8",
            )
            replace_dir(tmp, out)
    except BaseException as err:
        full = _disk_full(err) or (_io_error(err) and _free_bytes(tmp) < _FULL_BELOW_BYTES)
        shutil.rmtree(tmp, ignore_errors=True)
        converted = _output_error(err, out, option, full)
        if converted is not err:
            raise converted from None
        raise


def replace_dir(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move the folder ``src`` to ``dst``, replacing a folder there; ``src`` is gone afterwards.

    Where the system can exchange two paths in one step (Linux ``renameat2``), a reader of
    ``dst`` never finds it missing; elsewhere it is missing for the instant between two renames.
    """
    src, dst = Path(src), Path(dst)
    if not dst.exists():
        os.replace(src, dst)
        return
    if _exchange(src, dst):
        shutil.rmtree(src, ignore_errors=True)  # now the old folder
        return
    old = dst.parent / scratch_name(dst.name)
    with _signals_blocked():
        os.replace(dst, old)
        os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a filesystem without it
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` so cleanup code runs (the
    default kills the process on the spot). Only in the main thread, and only when nobody
    else handles SIGTERM."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


#: A write that fails with this little space left on the device failed for want of space: GDAL
#: reports a full disk while writing a GeoPackage as "Failed to commit transaction", with no errno.
_FULL_BELOW_BYTES = 2**20


def _free_bytes(path: Path) -> float:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return float("inf")


def _io_error(err: BaseException) -> bool:
    """An error of a file writer (the OS, GDAL through pyogrio/fiona/rasterio, SQLite), not a bug."""
    return isinstance(err, OSError) or type(err).__module__.split(".")[0] in (
        "pyogrio",
        "fiona",
        "rasterio",
        "osgeo",
        "sqlite3",
    )


def _disk_full(err: BaseException | None) -> bool:
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(err) or "Disk quota exceeded" in str(err):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def _output_error(err: BaseException, out: Path, option: str, full: bool = False) -> BaseException:
    """An OSError while writing outputs as one line naming the folder, when it is the user's to fix."""
    if full or _disk_full(err):
        return InputError(
            f"{option} {out}: no space left on the device; free some space or give a folder on another disk"
        )
    if isinstance(err, PermissionError):
        return InputError(
            f"{option} {out}: cannot write there (permission denied); give a folder you can write to"
        )
    if isinstance(err, OSError) and err.errno == errno.EROFS:
        return InputError(f"{option} {out}: the file system is read-only; give a folder you can write to")
    return err


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a scratch file beside ``path`` and move it into place when closed without error.

    The file gets the mode ``open`` would give (0o666 less the umask). Leftovers of killed
    writes of the same file are removed first.
    """
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target.parent, target.name)
    tmp = target.parent / f"{scratch_name(target.name)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as UTF-8 JSON (indented, non-ASCII kept) atomically; return the path."""
    with atomic_file(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2, default=str)
    return Path(path)
