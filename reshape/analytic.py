"""What a spec alone decides, without building it: exact ReLU and MAC counts, width edits.

Every ReLU layer's size is a width times an activation area and every conv's MACs a
product of widths and areas, so the counts here are a few integer products per block
(``relu_sizes``, ``stage_relus``, ``total_relus``, ``spec_macs``). They agree exactly
with ``reshape.count`` on the built model (tests check it), and they are what
makes DeepReShape synthesis, the DeepReDuce ladder, width scaling and search designs
O(1): ``largest_within`` solves "the widest network within a budget" in closed form.

The width edits (``scale_width``, ``require_unmasked``) live here too, below the model
builders and the DeepReDuce operators that both use them. Nothing here imports torch.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Iterator

from .errors import ReshapeError
from .spec import EXPANSION, FINAL_ACT, STEM_ACT, ArchSpec, Stage


# -- counts from the spec alone ---------------------------------------------------------------
def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _stem_size(spec: ArchSpec) -> int:
    """Side of the stem's activation map: an odd-kernel conv with padding k//2 gives ceil(H/stride)."""
    return _ceil_div(spec.input_size, spec.stem.stride)


def _blocks(spec: ArchSpec) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(stage, block, stride, in_channels, in_side, out_side) of every block in forward order."""
    side = _stem_size(spec)
    side = _ceil_div(side, 2) if spec.stem.pool else side
    chans = spec.stem.width
    for s, stage in enumerate(spec.stages, start=1):
        for b in range(stage.depth):
            stride = 2 if s > 1 and b == 0 else 1
            out = _ceil_div(side, stride)
            yield s, b, stride, chans, side, out
            chans, side = stage.width * EXPANSION[spec.block], out


def relu_sizes(spec: ArchSpec) -> dict[str, int]:
    """ReLUs of every ReLU layer when kept, by layer name (timm: the bottleneck's act1 runs
    before the stride; pre-activation: act1 acts on the block's input, before the stride)."""
    sizes = {} if spec.preact else {STEM_ACT: spec.stem.width * _stem_size(spec) ** 2}
    side = 0
    for s, b, _, cin, side_in, side in _blocks(spec):
        w = spec.stages[s - 1].width
        if spec.block == "basic":
            acts = (w * side**2, w * side**2)
        elif spec.preact:
            acts = (cin * side_in**2, w * side**2)
        else:
            acts = (w * side_in**2, w * side**2, EXPANSION["bottleneck"] * w * side**2)
        sizes.update({f"layer{s}.{b}.act{k}": n for k, n in enumerate(acts, start=1)})
    if spec.preact:  # the final BN-ReLU on the last stage's output
        sizes[FINAL_ACT] = spec.stages[-1].width * EXPANSION["preact"] * side**2
    return sizes


def _kept(spec: ArchSpec, name: str, size: int) -> int:
    state = spec.relu_state(name)
    return 0 if state.state == "removed" else state.kept if state.state == "masked" else size


def stage_relus(spec: ArchSpec) -> dict[str, int]:
    """ReLUs per stage (``stem``, ``layer1``, ..., and ``head`` for a pre-activation
    network's final ReLU) honouring removed and masked layers."""
    counts = {"stem": 0, **{f"layer{s}": 0 for s in range(1, len(spec.stages) + 1)}}
    if spec.preact:
        counts["head"] = 0
    for name, size in relu_sizes(spec).items():
        where = {STEM_ACT: "stem", FINAL_ACT: "head"}.get(name) or name.split(".")[0]
        counts[where] += _kept(spec, name, size)
    return counts


def total_relus(spec: ArchSpec) -> int:
    return sum(stage_relus(spec).values())


def snl_omitted(spec: ArchSpec) -> str:
    """The ReLU layer SNL's released networks do not have, which its published counts leave out.

    SNL (Cho et al., ICML 2022; NYU-DICE-Lab/selective_network_linearization @ eac688c,
    ``archs_unstructured/cifar_resnet.py``): ``ResNet_IN`` runs its stem as conv-BN with the
    stem ReLU commented out (ResNet18/CIFAR: 557,056 - 65,536 = 491,520), and
    ``WideResNet.forward`` goes from the final BN straight to average pooling, its ``self.relu``
    never called (WRN-22-8/CIFAR: 1,392,640 - 512*8*8 = 1,359,872). Its ``relu_counting``
    sums the ``alpha`` gates, one per ReLU that exists.
    """
    return FINAL_ACT if spec.preact else STEM_ACT


def relus_snl(spec: ArchSpec) -> int:
    """ReLUs in SNL's counting convention: ``total_relus`` without the layer ``snl_omitted`` names."""
    name = snl_omitted(spec)
    return total_relus(spec) - _kept(spec, name, relu_sizes(spec)[name])


def spec_macs(spec: ArchSpec) -> int:
    """Conv and classifier MACs per image (what ``torch.utils.flop_counter`` counts, halved)."""
    k = spec.stem.kernel
    macs = spec.in_chans * spec.stem.width * k * k * _stem_size(spec) ** 2
    out = spec.stem.width
    for s, _, stride, cin, side_in, side_out in _blocks(spec):
        w = spec.stages[s - 1].width
        out = w * EXPANSION[spec.block]
        if spec.block != "bottleneck":
            macs += (cin * w + w * w) * 9 * side_out**2  # two 3x3 convs
        else:
            macs += cin * w * side_in**2 + (9 * w * w + w * out) * side_out**2
        if stride != 1 or cin != out:  # the 1x1 projection shortcut (timm's and WRN's)
            macs += cin * out * side_out**2
    return macs + out * spec.num_classes


def spec_params(spec: ArchSpec) -> int:
    """Trainable parameters of the built model (conv weights, BatchNorm scale and shift, the
    classifier): what building it will allocate, known before allocating anything."""
    k = spec.stem.kernel
    params = spec.in_chans * spec.stem.width * k * k + 2 * spec.stem.width
    out = spec.stem.width
    for s, _, stride, cin, _, _ in _blocks(spec):
        w = spec.stages[s - 1].width
        out = w * EXPANSION[spec.block]
        if spec.block == "basic":
            params += (cin * w + w * w) * 9 + 2 * (w + w)
        else:
            params += cin * w + 9 * w * w + w * out + 2 * (w + w + out)
        if stride != 1 or cin != out:  # projection shortcut: 1x1 conv + BatchNorm
            params += cin * out + 2 * out
    return params + out * spec.num_classes + spec.num_classes


# -- closed-form solving ----------------------------------------------------------------------
def largest_within(f: Callable[[int], int], limit: int, lo: int) -> int:
    """Largest integer ``x >= lo`` with ``f(x) <= limit`` (``lo - 1`` if none).

    ``f`` must be a quadratic (or linear) in ``x`` that increases for ``x >= lo``: its
    coefficients are read from ``f(lo)``, ``f(lo+1)``, ``f(lo+2)`` and the root is taken
    in closed form; one exact check on each side absorbs float rounding.
    """
    f0, f1, f2 = f(lo), f(lo + 1), f(lo + 2)
    a = (f2 - 2 * f1 + f0) / 2
    b = f1 - f0 - a  # f(lo + y) = f0 + b*y + a*y^2
    room = limit - f0
    if room < 0:
        return lo - 1
    y = room / b if a == 0 else (-b + math.sqrt(b * b + 4 * a * room)) / (2 * a)
    x = lo + math.floor(y)
    while f(x + 1) <= limit:
        x += 1
    while x >= lo and f(x) > limit:
        x -= 1
    return x


# -- width edits -------------------------------------------------------------------------------
def scale_width(spec: ArchSpec, alpha: float) -> ArchSpec:
    """All widths, stem included, times ``alpha``, rounded to the nearest integer (at least 1)."""
    if not alpha > 0:
        raise ReshapeError(f"width scale alpha must be > 0, got {alpha}")
    require_unmasked(spec, "scale widths")
    scaled = lambda w: max(1, int(w * alpha + 0.5))  # noqa: E731  (round half up, not to even)
    return spec.replace(
        stages=tuple(Stage(scaled(s.width), s.depth) for s in spec.stages),
        stem=dataclasses.replace(spec.stem, width=scaled(spec.stem.width)),
    )


def require_unmasked(spec: ArchSpec, action: str) -> None:
    """Shape edits would leave partial-mask counts sized for the old shape: refuse them."""
    if any(layer.state == "masked" for layer in spec.relus):
        raise ReshapeError(f"cannot {action} of a spec with partial ReLU masks (their counts are "
                           "sized for the old shape); reshape first, then mask")
