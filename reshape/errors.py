"""User-facing errors.

A ``ReshapeError`` is a problem with the user's input or environment (a bad spec, a
missing dataset, an unreachable budget). The CLI prints its message on one line and
exits 1; anything else is a bug and keeps its traceback.

The library is called from Python and from the command line alike, so a message never
spells a remedy as a command-line option. It names a parameter by placeholder instead:
``$force``, ``$out`` (the names in ``PARAMS``), and ``${params.lam}`` for a key of a run's
settings (a refusal that lists what differs). ``str(exc)`` reads them the way a Python
caller writes them (``force=True``, ``out``, ``params.lam``); the CLI's error boundary
reads them as the options of the command that runs (``render``). A ``$word`` not in
``PARAMS`` is text, and so are braces without a ``$``. ``param`` names the parameter
that is wrong, where one is.
"""
from __future__ import annotations

import io
import re
import traceback
from typing import Callable, Mapping

#: Flags a message may name: a Python caller reads ``$force`` as ``force=True``.
FLAGS = ("force", "resume", "download", "retarget", "timm_config")
#: Parameters a message may name that take a value: a Python caller reads ``$out`` as ``out``.
VALUES = ("out", "cache", "storage", "study", "trials", "budget", "budgets", "data", "dataset", "root",
          "input_size", "width", "limit", "val", "lr", "warmup_epochs", "batch_size", "device", "mode", "macs",
          "leaf_modules")
#: Every ``$name`` placeholder; any other ``$word`` in a message is text.
PARAMS = frozenset(FLAGS + VALUES)
_PLACEHOLDER = re.compile(r"\$(?:\{(?P<key>[^{}]+)\}|(?P<name>[a-z_][a-z0-9_]*))")


def python_name(name: str) -> str:
    """How a Python caller writes parameter ``name`` (a flag as ``name=True``)."""
    return f"{name}=True" if name in FLAGS else name


def run_key(key: str) -> str:
    """The placeholder of ``key`` (dotted) of a run's settings, e.g. ``${params.lam}``."""
    return "${" + key + "}"


class ReshapeError(Exception):
    """An error the user can fix; the message names what is wrong and what to do.

    ``message`` may name parameters by placeholder (module docstring); it is kept as
    ``template``. ``param`` is the parameter whose value is wrong, when one is.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.template = message
        self.param = param

    def render(self, name: Callable[[str], str] = python_name, keys: Mapping[str, str] | None = None) -> str:
        """The message with each ``$name`` read by ``name`` and each ``${key}`` by ``keys``
        (a key it lacks reads as itself)."""

        def fill(m: re.Match[str]) -> str:
            if m["key"]:
                return (keys or {}).get(m["key"], m["key"])
            return name(m["name"]) if m["name"] in PARAMS else m[0]

        return _PLACEHOLDER.sub(fill, self.template)

    def __str__(self) -> str:
        return self.render()


class ParamError(ReshapeError, ValueError):
    """A parameter's value is wrong (out of range, or not for this data); the message starts with it."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(f"${param} {problem}", param=param)


class OwnershipError(ReshapeError):
    """A path this call would write is not its to write: another command's or setting's run,
    files it did not write, a file where a folder goes, an input or its folder, a device, or
    a folder another process is writing. ``param`` names the path (``out`` unless said; None
    for a path the caller did not give)."""

    def __init__(self, message: str, *, param: str | None = "out") -> None:
        super().__init__(message, param=param)


class SpecError(ReshapeError, ValueError):
    """A spec field is malformed; the message starts with the field's path."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


class BudgetUnreachable(ReshapeError):
    """No network of this method fits the ReLU budget (e.g. below the width-1 network).

    A property of the budget, not a mistake: a frontier records the point as unreachable
    and goes on, where any other ``ReshapeError`` stops it.
    """


#: What torch and the C allocator say when an allocation fails or a tensor size overflows.
_NO_MEMORY = ("can't allocate memory", "cannot allocate memory", "out of memory", "size calculation overflowed")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed allocation (``MemoryError``, or torch's ``RuntimeError`` for a
    CPU or CUDA allocation or an overflowing size): the machine's limit, not a bug."""
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError)
                                            and any(s in str(exc).lower() for s in _NO_MEMORY))


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of ``exc``'s message (its type when empty), cut to ``limit`` characters."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def not_utf8(path: str, exc: UnicodeDecodeError, what: str = "file") -> str:
    """The message for a file that does not decode as UTF-8, with where it stops decoding."""
    return f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"


def user_error(exc: BaseException) -> ReshapeError | None:
    """``exc`` as the one-line error the user can act on (a file that is not text, a file
    system refusal, memory), or None for anything else: a bug keeps its traceback."""
    if isinstance(exc, ReshapeError):
        return exc
    if isinstance(exc, UnicodeDecodeError):
        name = _file_being_read(exc)
        return ReshapeError(not_utf8(name, exc) if name else not_utf8("file", exc, "an input"))
    if isinstance(exc, OSError):
        paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        reason = exc.strerror or str(exc)
        return ReshapeError(f"cannot use {paths}: {reason}" if paths else f"file system error: {reason}")
    if is_out_of_memory(exc):
        return ReshapeError(f"not enough memory ({first_line(exc)}); use a narrower model ($width), a smaller "
                            "$batch_size or a machine with more memory")
    return None


def _file_being_read(exc: BaseException) -> str | None:
    """The name of the innermost text file open in the frames of ``exc`` (the one that failed to decode)."""
    for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):
        for value in frame.f_locals.values():
            if isinstance(value, io.TextIOWrapper) and isinstance(getattr(value, "name", None), str):
                return value.name
    return None
