"""HybReNets (DeepReShape, Jha & Reagen): ResNets whose stage widths follow ``HRN-axbxcx``.

A shape ``HRN-axbxcx`` with base width ``m`` has stage widths
``[m, a*m, a*b*m, a*b*c*m]`` and stem width ``m``. Each stage halves H and W, so a
multiplier ``f`` scales the next stage's ReLUs by ``f/4``: ``f = 4`` keeps ReLUs equal
across stages, ``f > 4`` moves them into the deeper stages. Depths, block kind, stem
and input come from a backbone spec, so any ResNet-family depth works (BasicBlock or
Bottleneck). ``timm.create_model('hybrenet_5x5x3x_m16', num_classes=100)`` builds the
published ResNet18 HybReNet in the CIFAR convention (3x3 stem, 32x32 input).

Multipliers and the base width may be non-integer (DeepReShape's rule derives
multipliers from a measured criticality ranking, and narrow backbones need base widths
below one channel per unit): each width is then ``m * a * b ...`` rounded half up, at
least 1. Integer multipliers and widths give exactly ``[m, a*m, a*b*m, ...]``.
"""
from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction
from typing import Sequence, Union

from ..analytic import require_unmasked
from ..errors import ReshapeError
from ..spec import ArchSpec, Stage
from ._registry import register_family
from .resnet import cifar_spec

_HRN = re.compile(r"^HRN-((?:\d+x)+)(?:-m(\d+))?$", re.IGNORECASE)
HRN_FORM = "HRN-axbxcx or HRN-axbxcx-mM with positive integers (e.g. HRN-5x5x3x, HRN-2x5x3x-m32)"

#: A multiplier or base width: an integer for the published shapes, a Fraction (or float)
#: for shapes derived from a measured criticality ranking or scaled to a narrow backbone.
Number = Union[int, Fraction, float]

#: timm name -> (plain timm backbone giving block and depths, HRN shape with base width).
NAMED: dict[str, tuple[str, str]] = {
    "hybrenet_5x5x3x_m16": ("resnet18", "HRN-5x5x3x-m16"),
    "hybrenet_2x5x3x_m32": ("resnet18", "HRN-2x5x3x-m32"),
    "hybrenet34_5x5x3x_m16": ("resnet34", "HRN-5x5x3x-m16"),
    "hybrenet50_5x5x3x_m16": ("resnet50", "HRN-5x5x3x-m16"),
    "hybrenet50_2x5x3x_m32": ("resnet50", "HRN-2x5x3x-m32"),
}


def parse_hrn(text: str) -> tuple[tuple[int, ...], int | None]:
    """``'HRN-5x5x3x-m16'`` -> ``((5, 5, 3), 16)``; the base width is None when absent."""
    match = _HRN.match(text.strip())
    if match:
        multipliers = tuple(int(x) for x in match.group(1).split("x")[:-1])
        base_width = int(match.group(2)) if match.group(2) else None
        if 0 not in (*multipliers, base_width):
            return multipliers, base_width
    raise ReshapeError(f"malformed HybReNet shape {text!r}; expected {HRN_FORM}")


def number_text(x: Number, digits: int = 6) -> str:
    """``5`` for integral values, else ``digits`` significant digits (``4.26667``)."""
    return str(int(x)) if x == int(x) else f"{float(x):.{digits}g}"


def hrn_shape(multipliers: Sequence[Number]) -> str:
    """``HRN-5x5x3x``; a derived multiplier shows 3 significant digits (``HRN-4.27x5x2.56x``)."""
    return f"HRN-{''.join(f'{number_text(f, 3)}x' for f in multipliers)}"


def hrn_name(multipliers: Sequence[Number], base_width: Number) -> str:
    return f"{hrn_shape(multipliers)}-m{number_text(base_width)}"


def round_width(x: Number) -> int:
    """A channel count from a real width: rounded half up (not to even), at least 1."""
    return max(1, math.floor(Fraction(x) + Fraction(1, 2)))


def hrn_widths(multipliers: Sequence[Number], base_width: Number) -> tuple[int, ...]:
    """Stage widths ``[m, a*m, a*b*m, ...]`` (cumulative products of the multipliers), each
    rounded half up to a whole channel (exact for integers)."""
    if isinstance(base_width, int) and all(isinstance(f, int) for f in multipliers):  # published shapes
        return tuple(base_width * math.prod(multipliers[:i]) for i in range(len(multipliers) + 1))
    m = Fraction(base_width)
    return tuple(round_width(m * math.prod(map(Fraction, multipliers[:i]), start=Fraction(1)))
                 for i in range(len(multipliers) + 1))


def hybrenet(backbone: ArchSpec, shape: str | Sequence[Number], base_width: Number | None = None) -> ArchSpec:
    """``backbone`` (its block, depths, stem and input) reshaped to an HRN shape.

    ``shape`` is an HRN string or the multipliers; ``base_width`` overrides the
    string's ``-mM``. The stem is as wide as stage 1. Width-independent ReLU states
    (removed layers) carry over; partial masks are sized for the old widths and are refused.
    """
    multipliers, parsed_m = parse_hrn(shape) if isinstance(shape, str) else (tuple(shape), None)
    m = base_width if base_width is not None else parsed_m
    if (m is not None and not m > 0) or not all(f > 0 for f in multipliers):
        raise ReshapeError(f"HybReNet multipliers and base width must be positive, got {list(multipliers)} "
                           f"and {m}")
    if m is None:
        raise ReshapeError(f"HybReNet shape {shape!r} needs a base width: write it as "
                           f"{hrn_name(multipliers, 16)} or pass base_width")
    if len(multipliers) != len(backbone.stages) - 1:
        raise ReshapeError(f"{len(multipliers)} stage multipliers do not fit a {len(backbone.stages)}-stage "
                           f"backbone; expected {len(backbone.stages) - 1} (form {HRN_FORM})")
    require_unmasked(backbone, "change the stage widths")
    widths = hrn_widths(multipliers, m)
    return backbone.replace(
        stages=tuple(Stage(w, s.depth) for w, s in zip(widths, backbone.stages)),
        stem=dataclasses.replace(backbone.stem, width=widths[0]),
        name=hrn_name(multipliers, m),
    )


def named_spec(name: str) -> ArchSpec:
    """The spec of a registered HybReNet, in the CIFAR convention (3x3 stem, 32x32)."""
    backbone, shape = NAMED[name]
    return hybrenet(cifar_spec(backbone), shape).replace(name=name)


for _name in NAMED:
    register_family(_name, lambda name=_name: named_spec(name), __name__)
