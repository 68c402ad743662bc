from __future__ import annotations

import random

import pytest

from reshape.budget import allocate, water_fill
from reshape.errors import ReshapeError


def test_proportional_when_no_cap_binds():
    assert allocate([1, 2, 3, 4], [100, 100, 100, 100], 100) == [10, 20, 30, 40]


def test_capped_layer_excess_is_redistributed():
    # lambda*w would give 10/20/70; the third layer is capped at 40, its 30 extra
    # ReLUs go to the others 1:2 -> 20/40/40.
    assert water_fill([1, 2, 7], [100, 100, 40], 100) == pytest.approx([20, 40, 40])
    assert allocate([1, 2, 7], [100, 100, 40], 100) == [20, 40, 40]


def test_largest_remainder_sums_exactly():
    # 100/3 each: 33.33 -> floors 33, one extra to the first (ties by order)
    assert allocate([1, 1, 1], [50, 50, 50], 100) == [34, 33, 33]


def test_zero_weight_layers_fill_last():
    assert allocate([0, 1], [10, 10], 15) == [5, 10]


def test_channel_units_stay_multiples_and_under_budget():
    counts = allocate([1, 1], [64 * 16, 128 * 4], 700, units=[16, 4])
    assert counts[0] % 16 == 0 and counts[1] % 4 == 0
    assert 700 - 4 < sum(counts) <= 700


@pytest.mark.parametrize("seed", range(20))
def test_random_allocations_respect_caps_and_sum(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 12)
    caps = [rng.randint(0, 5000) for _ in range(n)]
    weights = [rng.choice([0.0, rng.random() * 10]) for _ in range(n)]
    budget = rng.randint(1, max(1, sum(caps)))
    if sum(caps) == 0:
        return
    counts = allocate(weights, caps, budget)
    assert sum(counts) == budget
    assert all(0 <= c <= cap for c, cap in zip(counts, caps))
    assert all(isinstance(c, int) for c in counts)


def test_budget_errors():
    with pytest.raises(ReshapeError, match="exceeds the network's 20 ReLUs"):
        allocate([1, 1], [10, 10], 21)
    with pytest.raises(ReshapeError, match="at least 1"):
        allocate([1, 1], [10, 10], 0)
