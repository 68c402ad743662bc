"""Atomic file writes, safe JSON reads, folder locks, and fingerprints of JSON data.

Every file the tool writes goes through here so that an interrupted run never leaves
a half-written spec, checkpoint or result behind: data goes to a temporary file in
the same folder, is flushed to disk, then renamed over the target.

A process killed mid-write (kill -9, power loss) cannot delete its temporary file, so
the name says whose it is: ``.<target>.~<pid>@<host>.<random>.tmp``. ``remove_stale_temps``
deletes those whose writer is gone (run directories call it when they are claimed),
and never one that a live process is still writing. Every result file gets the
permissions a plain ``open()`` would give it (0666 less the umask), whichever library
wrote the bytes.

``canonical`` and ``fingerprint`` make JSON-able settings comparable and digestible
(run manifests, trainings, frontier keys), and ``differences`` names where two settings
differ; they sit here, below every layer that keys anything, because they need only JSON.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import OwnershipError, ReshapeError, not_utf8, run_key

_TEMP = re.compile(r"^\.(?P<target>.+)\.~(?P<pid>\d+)@(?P<host>.*)\.[A-Za-z0-9_]+\.tmp$")
#: A temporary file of another machine's writer (a shared filesystem) counts as stale after this long.
FOREIGN_TEMP_AGE_S = 6 * 3600


def _host() -> str:
    return socket.gethostname()[:64]


#: What ``os.stat`` calls each kind of file that is neither a regular file nor a folder.
_SPECIAL = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it is a device, FIFO or socket (through symlinks), else None.

    Such a path is never an output: renaming a file over ``/dev/null`` replaces the device.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((name for test, name in _SPECIAL if test(mode)), None)


def refuse_special(path: str | os.PathLike[str], param: str | None = "out") -> None:
    """An ``OwnershipError`` when ``path`` (the value of ``param``; None for an output the
    caller did not name) is a device, FIFO or socket."""
    kind = special_kind(path)
    if kind:
        raise OwnershipError(f"{'$' + param if param else 'output'} {path} is {kind}, not a regular file or "
                             "folder; pick another path", param=param)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success
    (never over a device, FIFO or socket)."""
    target = Path(target)
    refuse_special(target, None)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.~{os.getpid()}@{_host()}.", suffix=".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # After the write: mkstemp makes 0600, and a writer may have replaced the file with its own.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


#: The advisory lock file of a folder being written (``lock_folder``).
LOCK_FILE = ".reshape.lock"
#: The lock files this process holds, by folder: one lock per folder, re-entrant in a process.
_HELD: dict[Path, int] = {}


def lock_folder(folder: str | os.PathLike[str], param: str = "out", wait: bool = False) -> None:
    """Hold an exclusive advisory lock (``flock`` on ``folder/.reshape.lock``) until
    ``unlock_folder`` or the process ends (a killed writer releases it with its file handles).

    A second writer of the same folder is refused at once (an ``OwnershipError`` of ``param``),
    naming the holder's process and host, so two identical commands never train into one
    folder; with ``wait`` (a stage that several workers share) it says whom it waits for, on
    stderr, and blocks until the holder is done. ``flock`` is honoured across machines on NFS
    (Linux maps it to NFS byte-range locks). Taking it again in the holding process is a no-op
    (a command that calls another in-process).
    """
    folder = Path(folder)
    key = folder.resolve()
    if key in _HELD:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                os.close(fd)
                raise OwnershipError(f"${param} {folder} is being written by {holder}; wait for it to finish, "
                                     f"or pick another ${param}", param=param) from None
            print(f"waiting for {holder} to finish writing {folder}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder finished and removed it after we opened it: lock the file there now
    name = f"process {os.getpid()} on {_host()}".encode()
    os.pwrite(fd, name, 0)
    os.ftruncate(fd, len(name))
    _HELD[key] = fd


def _holder(fd: int, patience: float = 2.0) -> str:
    """The name the lock's holder wrote; it writes it just after taking the lock, so a refusal
    in between waits for it briefly rather than naming nobody."""
    deadline = time.monotonic() + patience
    while True:
        name = os.pread(fd, 256, 0).decode("utf-8", "replace").strip()
        if name or time.monotonic() > deadline:
            return name or "another process"
        time.sleep(0.02)


def unlock_folder(folder: str | os.PathLike[str]) -> None:
    """Release ``lock_folder``'s lock on ``folder`` and remove the lock file (a finished run
    keeps none). It is removed while still locked, and a writer that opened it meanwhile
    sees it gone once it gets the lock and locks a new one (``_same_file``)."""
    fd = _HELD.pop(Path(folder).resolve(), None)
    if fd is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(Path(folder, LOCK_FILE))
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path`` (not removed or replaced)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def is_bookkeeping(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a temporary file of ``atomic_path`` or a folder's lock: not content."""
    return is_temp(path) or Path(path).name == LOCK_FILE


def is_temp(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a temporary file of ``atomic_path``."""
    return _TEMP.match(Path(path).name) is not None


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files in ``folder`` (not below) left by interrupted atomic writes.

    A file is stale when its writer, named in the file name, is a process of this machine
    that no longer runs, or another machine's writer that has not touched it for
    ``FOREIGN_TEMP_AGE_S``. Returns the files removed.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    host = _host()
    for entry in folder.iterdir():
        m = _TEMP.match(entry.name)
        if m is None or not entry.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):  # its writer may finish meanwhile
            if m["host"] == host:
                stale = not process_alive(int(m["pid"]))
            else:
                stale = time.time() - entry.stat().st_mtime > FOREIGN_TEMP_AGE_S
            if stale:
                entry.unlink()
                removed.append(entry)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """Read UTF-8 text, turning a missing, unreadable or non-UTF-8 file into one clear ``ReshapeError``."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReshapeError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ReshapeError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ReshapeError(not_utf8(path, exc, what)) from None


def writable_problem(path: Path, directory: bool) -> str | None:
    """Why ``path`` cannot be written as a file (or created as a folder), or None when it can.

    Tries a temporary file in the folder that would hold it (removed at once): permission
    bits alone say nothing for root or for special file systems such as /proc. A device,
    FIFO or socket is never written (renaming over ``/dev/null`` would replace the device).
    """
    kind = special_kind(path)
    if kind:
        return f"'{path}' is {kind}, not a regular {'folder' if directory else 'file'}; pick another path."
    if path.exists() and path.is_dir() != directory:
        return f"{'Directory' if directory else 'File'} '{path}' is {'a file' if directory else 'a directory'}."
    parent = path if directory and path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path}: {parent} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        return f"cannot write {path}: {parent} does not take new files ({exc.strerror or exc})"
    return None


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Read JSON, turning every failure into one clear ``ReshapeError``."""
    path = Path(path)
    return parse_json(read_text(path, what), f"{what} {path}")


def parse_json(text: str, what: str = "JSON text") -> Any:
    """``json.loads``, every failure one clear ``ReshapeError`` (nesting too deep included:
    ``[[[...]]]`` ten thousand levels down raises RecursionError in the parser)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReshapeError(f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise ReshapeError(f"{what} is nested too deeply to read; a reshape file is a few levels deep") from None


# -- fingerprints ---------------------------------------------------------------------------------
def canonical(obj: Any) -> Any:
    """``obj`` as plain JSON data (tuples become lists), so equal settings compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_default))


def fingerprint(obj: Any) -> str:
    """A short, stable digest of JSON-able ``obj``: equal settings give equal fingerprints."""
    text = json.dumps(canonical(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def differences(saved: Mapping[str, Any], wanted: Mapping[str, Any], prefix: str = "",
                common: bool = False) -> list[str]:
    """``key: saved -> wanted`` for each leaf where two parameter sets differ (nested dicts flattened).

    Each dotted key is a placeholder (``reshape.errors.run_key``) for an error message: a
    Python caller reads ``params.lam``, the command line the option that set it.
    ``common`` compares only the keys both sets have (two methods' params).
    """
    out = []
    keys = set(saved) & set(wanted) if common else set(saved) | set(wanted)
    for key in sorted(keys):
        a, b = saved.get(key, "<unset>"), wanted.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.", common)
        elif a != b:
            out.append(f"{run_key(prefix + key)}: {_short(a)} -> {_short(b)}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."
