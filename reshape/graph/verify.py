"""The numerical check every rewrite runs: rewritten vs reference on random inputs."""
from __future__ import annotations

import torch
from torch import nn

from .._probe import eval_mode
from ..errors import ReshapeError

#: Largest max-relative error an exact (lossless) rewrite may show in float32.
EXACT_TOLERANCE = 1e-4


def max_relative_error(reference: nn.Module, candidate: nn.Module,
                       input_shape: tuple[int, ...], seed: int = 0) -> float:
    """max |candidate(x) - reference(x)| / max |reference(x)| over one random input.

    Both run in eval mode (BatchNorm uses its running statistics) without gradients.
    The max over all output positions includes the borders.
    """
    gen = torch.Generator().manual_seed(seed)
    param = next(reference.parameters(), None)
    x = torch.randn((1, *input_shape), generator=gen).to(
        device=param.device if param is not None else "cpu",
        dtype=param.dtype if param is not None else torch.float32)
    with torch.no_grad(), eval_mode(reference), eval_mode(candidate):
        ref, out = reference(x), candidate(x)
    if ref.shape != out.shape:
        raise ReshapeError(f"rewrite changed the output shape {tuple(ref.shape)} -> {tuple(out.shape)}")
    return float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def require_exact(error: float, what: str) -> None:
    """Fail loudly when a rewrite that must be lossless is not."""
    if not error < EXACT_TOLERANCE:
        raise ReshapeError(f"{what} is not exact: max relative error {error:.3g} >= "
                           f"{EXACT_TOLERANCE:g} (float32) against the linearized original")
