"""ReLU-budget optimisation: per-layer allocation, sensitivity, mask locations, SENet and SNL."""
from __future__ import annotations

from .allocate import allocate, water_fill

__all__ = ["allocate", "water_fill"]
