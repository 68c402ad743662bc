"""Layers that change where a network pays for ReLUs.

``MaskedReLU`` keeps a ReLU only where its binary mask is 1 and passes the input
through elsewhere: ``y = relu(m * x) + (1 - m) * x``. The mask lives in a buffer, so
it is saved with the weights; the accounting reads ``relu_count`` instead of the
activation size.
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import ReshapeError
from .spec import GRANULARITIES


class MaskedReLU(nn.Module):
    """A partial ReLU layer with a binary mask over neurons (C, H, W) or channels (C)."""

    def __init__(self, mask_shape: tuple[int, ...], granularity: str = "neuron") -> None:
        super().__init__()
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        self.granularity = granularity
        self.register_buffer("mask", torch.ones(mask_shape))
        # (mask tensor, (its version, dtype, ndim) when built, floor): see _floor
        self._floor_cache: tuple[torch.Tensor, tuple, torch.Tensor] | None = None

    @property
    def kept(self) -> int:
        """Number of mask positions that keep a ReLU (channels or neurons)."""
        if self.mask.is_meta:
            raise ReshapeError("a MaskedReLU on the meta device has no mask values to count")
        return int(self.mask.count_nonzero())

    def relu_count(self, output_shape: tuple[int, ...], kept: int) -> int:
        """ReLUs evaluated for one input whose activation has ``output_shape`` (C, H, W).

        ``kept`` is passed in (read before a meta-device pass swaps the mask out).
        """
        if self.granularity == "channel":
            per_channel = 1
            for size in output_shape[1:]:
                per_channel *= size
            return kept * per_channel
        return kept

    def set_mask(self, mask: torch.Tensor) -> None:
        if tuple(mask.shape) != tuple(self.mask.shape):
            raise ReshapeError(
                f"mask shape {tuple(mask.shape)} does not match the layer's {tuple(self.mask.shape)}"
            )
        self.mask.copy_((mask != 0).to(self.mask.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same values and gradients as relu(m*x) + (1-m)*x for a binary m and finite x.
        # Training clamps x in place at a cached floor, like timm's ReLU(inplace=True) at the
        # same places (benchmarks/masked_step.py); inference and export use the equivalent
        # out-of-place select.
        if self.training and torch.is_grad_enabled() and x.requires_grad and not x.is_leaf:
            return _MaskedReLUInplace.apply(x, self._floor(x))
        identity = _broadcast(self.mask, x, self.granularity) == 0
        return torch.where((x >= 0) | identity, x, 0.0)

    def _floor(self, x: torch.Tensor) -> torch.Tensor:
        """0 where the ReLU is kept, -inf where it is not, shaped to broadcast over ``x``.

        Rebuilt only when the mask changes: a new tensor (``.to``, ``load_state_dict(assign=True)``)
        or an in-place write (``set_mask``, ``load_state_dict``), which bumps its version.
        """
        key = (self.mask._version, x.dtype, x.dim())
        cache = self._floor_cache
        if cache is None or cache[0] is not self.mask or cache[1] != key:
            identity = _broadcast(self.mask, x, self.granularity) == 0
            floor = torch.zeros_like(identity, dtype=x.dtype).masked_fill_(identity, float("-inf"))
            self._floor_cache = (self.mask, key, floor)
        return self._floor_cache[2]

    def extra_repr(self) -> str:
        return f"mask_shape={tuple(self.mask.shape)}, granularity={self.granularity}"


class _MaskedReLUInplace(torch.autograd.Function):
    """``x = max(x, floor)`` in place; the gradient passes where the output is above the floor.

    Above the floor means ``x > 0`` where the ReLU is kept (as ReLU's own gradient) and always
    elsewhere. Only same-dtype float kernels run (a clamp; a subtract and ReLU's own backward):
    a float*bool multiply or a select costs several times more on CPU.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        x.clamp_min_(floor)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x, floor)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        out, floor = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad, out - floor, 0), None


class SoftMaskReLU(nn.Module):
    """SNL's relaxed mask: ``y = a * relu(x) + (1 - a) * x`` with a learnable gate ``a``.

    ``a`` starts at 1 (all ReLUs) and an L1 penalty drives it down; a position counts as
    a ReLU while ``a > threshold`` (SNL's 1e-2). As in SNL's released code ``a`` has no
    upper bound: a gate the task pushes above 1 stays there and ranks above the others,
    so gates rarely tie; in training it is kept >= 0 (see ``forward``). ``fix`` freezes
    the gates at a binary mask once the budget is reached (the rest of that epoch then
    trains the weights under it).
    """

    def __init__(self, mask_shape: tuple[int, ...], granularity: str = "neuron",
                 threshold: float = 1e-2) -> None:
        super().__init__()
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        self.granularity = granularity
        self.threshold = threshold
        self.alpha = nn.Parameter(torch.ones(mask_shape))
        self.register_buffer("fixed", None, persistent=False)

    def gate(self) -> torch.Tensor:
        """The gate in use: the raw ``a``, or the binary mask ``fix`` set."""
        return self.alpha if self.fixed is None else self.fixed

    def fix(self, mask: torch.Tensor | None = None) -> None:
        """Freeze the gates at ``mask`` (default: ``a > threshold``, the positions that count)."""
        with torch.no_grad():
            binary = self.alpha > self.threshold if mask is None else mask
            self.fixed = binary.to(self.alpha).view_as(self.alpha)

    @property
    def kept(self) -> int:
        return int((self.gate().detach() > self.threshold).sum())

    relu_count = MaskedReLU.relu_count

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed is not None:
            # ``0 * alpha`` keeps the gate in the graph with a zero gradient, so that
            # DistributedDataParallel still sees every parameter used.
            a = self.fixed + 0 * self.alpha
        else:
            if self.training:
                # Projected onto a >= 0 before each step's use: at a large gate lr, Adam's
                # momentum would carry removed gates below 0 and back above the threshold.
                with torch.no_grad():
                    self.alpha.clamp_(min=0)
            a = self.alpha
        a = _broadcast(a, x, self.granularity)
        return a * torch.relu(x) + (1 - a) * x


def _broadcast(mask: torch.Tensor, x: torch.Tensor, granularity: str) -> torch.Tensor:
    """A per-image mask (C,H,W) or per-channel mask (C,) shaped to multiply a batch ``x``."""
    if granularity == "channel":
        return mask.view(1, -1, *([1] * (x.dim() - 2)))
    return mask.unsqueeze(0)
