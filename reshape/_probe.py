"""Run a model on the meta device: shapes and op traces without real compute.

The model itself stays where it is; its parameters and buffers are swapped for meta
tensors for the duration of one ``torch.func.functional_call``. Both the builder (to
size ReLU masks) and the accounting use this one pass.
"""
from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Sequence
from typing import Any, Callable, Iterator, Union

import torch
from torch import nn

from .errors import ReshapeError


Shape = tuple[int, ...]
#: One per-image shape (C, H, W), or a sequence of them, one per positional forward input.
InputShape = Union[Shape, Sequence[Shape]]


def input_shapes(input_shape: InputShape) -> tuple[Shape, ...]:
    """The per-image shape of each forward input: one shape such as ``(3, 32, 32)`` or several."""
    items = tuple(input_shape) if isinstance(input_shape, Sequence) else None
    if items and all(isinstance(s, int) for s in items):
        shapes: tuple = (items,)
    elif items and all(isinstance(s, Sequence) and s and all(isinstance(d, int) for d in s) for s in items):
        shapes = tuple(tuple(s) for s in items)
    else:
        raise ReshapeError(f"input shape must be one shape such as (3, 32, 32), or one per forward input "
                           f"such as [(3, 32, 32), (10,)], got {input_shape!r}")
    if any(d < 1 for s in shapes for d in s):
        raise ReshapeError(f"input shape must be positive integers, got {input_shape!r}")
    return shapes


def meta_input(input_shape: InputShape) -> tuple[torch.Tensor, ...]:
    """A batch-of-one meta tensor per forward input; shapes are per image, without the batch."""
    return tuple(torch.empty((1, *s), device="meta") for s in input_shapes(input_shape))


def _check_arity(model: nn.Module, given: int) -> None:
    """A forward that needs more (or takes fewer) inputs than shapes given: say how to pass them."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # a builtin forward without a signature: let the call decide
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    most = math.inf if any(p.kind is p.VAR_POSITIONAL for p in params) else len(positional)
    if not required <= given <= most:
        takes = f"{required}" if required == most else f"{required} to {most}"
        raise ReshapeError(
            f"{type(model).__name__}.forward takes {takes} input(s) but {given} input shape(s) were given; "
            f"pass one per-image shape per input, e.g. count(model, [(3, 32, 32), (10,)])")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.train(mode)


def meta_forward(model: nn.Module, input_shape: InputShape,
                 on_inputs: Callable[[tuple[torch.Tensor, ...]], None] | None = None) -> Any:
    """Forward meta inputs through ``model`` (eval mode, no grad) and return the output.

    ``on_inputs`` sees the input tensors first: the accounting marks them as the private
    data whose computations cost (parameters and constants are the server's own).
    """
    xs = meta_input(input_shape)
    _check_arity(model, len(xs))
    state = {
        name: torch.empty_like(t, device="meta")
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
    if on_inputs is not None:
        on_inputs(xs)
    with eval_mode(model), torch.no_grad():
        try:
            return torch.func.functional_call(model, state, xs, strict=False)
        except (RuntimeError, TypeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ReshapeError(
                f"the model cannot run on input shape {tuple(input_shape)}: {first}"
            ) from None


def output_shapes(model: nn.Module, input_shape: InputShape, names: list[str]) -> dict[str, torch.Size]:
    """Per-sample output shape of each named submodule for one meta forward pass."""
    shapes: dict[str, torch.Size] = {}

    def record(name: str):
        def hook(_module: nn.Module, _args: object, out: torch.Tensor) -> None:
            shapes.setdefault(name, out.shape[1:])
        return hook

    handles = [model.get_submodule(n).register_forward_hook(record(n)) for n in names]
    try:
        meta_forward(model, input_shape)
    finally:
        for h in handles:
            h.remove()
    return shapes
