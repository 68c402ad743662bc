"""Run a model on the meta device: shapes and op traces without real compute.

The model itself stays where it is; its parameters and buffers are swapped for meta
tensors for the duration of one ``torch.func.functional_call``. Both the builder (to
size ReLU masks) and the accounting use this one pass.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from .errors import ReshapeError


def meta_input(input_shape: tuple[int, ...]) -> torch.Tensor:
    """A batch-of-one meta tensor; ``input_shape`` is (C, H, W) without the batch."""
    if any((not isinstance(s, int)) or s < 1 for s in input_shape):
        raise ReshapeError(f"input shape must be positive integers, got {tuple(input_shape)}")
    return torch.empty((1, *input_shape), device="meta")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.train(mode)


def meta_forward(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Forward one meta input through ``model`` (eval mode, no grad) and return the output."""
    x = meta_input(input_shape)
    state = {
        name: torch.empty_like(t, device="meta")
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
    with eval_mode(model), torch.no_grad():
        try:
            return torch.func.functional_call(model, state, (x,), strict=False)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ReshapeError(
                f"the model cannot run on input shape {tuple(input_shape)}: {first}"
            ) from None


def output_shapes(model: nn.Module, input_shape: tuple[int, ...], names: list[str]) -> dict[str, torch.Size]:
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
