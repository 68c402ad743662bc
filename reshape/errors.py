"""User-facing errors.

A ``ReshapeError`` is a problem with the user's input or environment (a bad spec, a
missing dataset, an unreachable budget). The CLI prints its message on one line and
exits 1; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class ReshapeError(Exception):
    """An error the user can fix; the message names what is wrong and what to do."""


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
