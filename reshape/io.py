"""Atomic file writes and safe JSON reads.

Every file the tool writes goes through here so that an interrupted run never leaves
a half-written spec, checkpoint or result behind: data goes to a temporary file in
the same folder, is flushed to disk, then renamed over the target.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import ReshapeError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results should be shareable like open()'s
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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


def not_utf8(path: str | os.PathLike[str], exc: UnicodeDecodeError, what: str = "file") -> str:
    """The message for a file that does not decode as UTF-8, with where it stops decoding."""
    return f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Read JSON, turning every failure into one clear ``ReshapeError``."""
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReshapeError(
            f"{what} {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
