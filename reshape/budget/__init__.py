"""The ReLU-mask toolkit (no training): per-layer allocation, sensitivity, mask sites and masks.

The methods that train with it (SENet, SNL) live in ``reshape.methods``.
"""
from __future__ import annotations

from .allocate import allocate, water_fill

__all__ = ["allocate", "water_fill"]
