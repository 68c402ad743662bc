"""Split a global ReLU budget into per-layer counts (SENet's stage 1, "Ours" in methods.md).

Water-filling: each layer gets ``r_l = min(cap_l, lambda * w_l)`` with ``lambda`` chosen so
the counts sum to the budget; layers that hit their cap (the layer size) are fixed and
the excess is redistributed over the rest. Counts are then made integral by largest
remainder, so they sum to the budget exactly. With channel masks each layer can only
keep whole channels (``unit_l = H*W`` ReLUs); the result is then the largest total
<= budget reachable with those units.
"""
from __future__ import annotations

import math
from typing import Sequence

from ..errors import ReshapeError


def water_fill(weights: Sequence[float], caps: Sequence[int], budget: int) -> list[float]:
    """Real-valued counts ``min(cap, lambda * w)`` summing to ``budget``."""
    n = len(weights)
    if n != len(caps):
        raise ValueError("weights and caps differ in length")
    if any(w < 0 or not math.isfinite(w) for w in weights):
        raise ReshapeError("sensitivity weights must be finite and >= 0")
    total = sum(caps)
    if budget > total:
        raise ReshapeError(f"budget {budget:,} exceeds the network's {total:,} ReLUs")
    alloc = [0.0] * n
    active = [i for i in range(n) if caps[i] > 0]
    remaining = float(budget)
    while active and remaining > 0:
        weight_sum = sum(weights[i] for i in active)
        # Layers with zero weight share leftovers only once every weighted layer is full.
        share = {i: (weights[i] / weight_sum if weight_sum > 0 else caps[i] / sum(caps[j] for j in active))
                 for i in active}
        level = remaining
        capped = [i for i in active if share[i] > 0 and alloc[i] + level * share[i] >= caps[i]]
        if not capped:
            for i in active:
                alloc[i] += level * share[i]
            break
        for i in capped:
            remaining -= caps[i] - alloc[i]
            alloc[i] = float(caps[i])
        active = [i for i in active if i not in capped]
    return alloc


def allocate(weights: Sequence[float], caps: Sequence[int], budget: int,
             units: Sequence[int] | None = None) -> list[int]:
    """Integer per-layer ReLU counts: proportional to ``weights``, capped, summing to ``budget``.

    ``units[l]`` (default 1) is the granularity of layer l's count (H*W for channel
    masks). With all units 1 the sum is exactly ``budget``; otherwise it is the
    largest sum <= budget the units allow, filled greedily by largest shortfall.
    """
    if budget < 1:
        raise ReshapeError(f"the ReLU budget must be at least 1, got {budget}")
    units = list(units) if units is not None else [1] * len(caps)
    real = water_fill(weights, caps, budget)
    counts = [int(r // u) * u for r, u in zip(real, units)]
    left = budget - sum(counts)
    # Largest shortfall first; ties by layer order, so the result is deterministic.
    order = sorted(range(len(caps)), key=lambda i: (-(real[i] - counts[i]), i))
    while left > 0:
        progressed = False
        for i in order:
            if units[i] <= left and counts[i] + units[i] <= caps[i] and real[i] - counts[i] > 0:
                counts[i] += units[i]
                left -= units[i]
                progressed = True
                if left == 0:
                    break
        if not progressed:
            break
    return counts
