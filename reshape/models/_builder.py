"""Turn an ``ArchSpec`` into a runnable timm ResNet.

timm's ResNet is built with the spec's blocks, depths and widths, then two of its
traps are handled here once: its plain stem is always 64 wide (so the stem and
layer1 are rebuilt through timm's own ``make_blocks`` at the spec's stem width), and
its stem is the ImageNet one (so a CIFAR spec swaps in a 3x3 conv and drops the
max-pool). ReLU states are applied last: removed layers become ``nn.Identity`` and
masked ones ``MaskedReLU`` sized by a meta-device shape pass.

Block kinds timm's ResNet does not build (``preact``) come from the family module that
adds its network class to ``NETWORKS`` (``wrn``); ReLU states are applied to them the
same way, by module name.
"""
from __future__ import annotations

import zlib
from typing import Callable

import torch
from torch import nn
from timm.models.resnet import BasicBlock, Bottleneck, ResNet, make_blocks

from .._probe import output_shapes
from ..errors import SpecError
from ..layers import MaskedReLU
from ..spec import ArchSpec, ReluLayer

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
#: Network constructors of the block kinds that are not timm ResNets, added by their family
#: module on import (``reshape.models`` imports them all).
NETWORKS: dict[str, Callable[[ArchSpec], nn.Module]] = {}


def build(spec: ArchSpec) -> nn.Module:
    """A freshly initialised model for ``spec`` (CPU, train mode)."""
    model = NETWORKS[spec.block](spec) if spec.block in NETWORKS else _timm_resnet(spec)
    _apply_relu_states(model, spec)
    model.reshape_spec = spec  # lets counting and saving recover the spec from the model
    return model


def _timm_resnet(spec: ArchSpec) -> ResNet:
    block = BLOCKS[spec.block]
    model = ResNet(
        block=block,
        layers=spec.depths,
        channels=spec.widths,
        num_classes=spec.num_classes,
        in_chans=spec.in_chans,
    )
    _set_stem(model, spec, block)
    model.init_weights()
    return model


def _set_stem(model: ResNet, spec: ArchSpec, block: type[nn.Module]) -> None:
    stem = spec.stem
    model.conv1 = nn.Conv2d(
        spec.in_chans, stem.width, kernel_size=stem.kernel, stride=stem.stride,
        padding=stem.kernel // 2, bias=False,
    )
    model.bn1 = nn.BatchNorm2d(stem.width)
    model.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem.pool else nn.Identity()
    if stem.width != 64:  # timm built the stages for a 64-wide stem: rebuild at the spec's width
        stages, feature_info = make_blocks(
            (block,) * len(spec.stages), spec.widths, spec.depths, stem.width
        )
        for name, module in stages:
            setattr(model, name, module)
        model.feature_info = model.feature_info[:1] + feature_info
    reduction = stem.stride * (2 if stem.pool else 1)
    model.feature_info[0] = dict(num_chs=stem.width, reduction=stem.stride, module="act1")
    for info in model.feature_info[1:]:
        info["reduction"] = reduction * info["reduction"] // 4


def _apply_relu_states(model: nn.Module, spec: ArchSpec) -> None:
    masked = [layer for layer in spec.relus if layer.state == "masked"]
    shapes = output_shapes(model, spec.input_shape,
                           [layer.name for layer in masked])
    for i, layer in enumerate(spec.relus):
        if layer.state == "removed":
            model.set_submodule(layer.name, nn.Identity())
        elif layer.state == "masked":
            model.set_submodule(layer.name, _masked_relu(layer, tuple(shapes[layer.name]), i))


def _masked_relu(layer: ReluLayer, shape: tuple[int, ...], index: int) -> MaskedReLU:
    """A mask with exactly ``layer.kept`` ReLUs at seeded positions (trained masks replace it)."""
    c, spatial = shape[0], int(torch.Size(shape[1:]).numel())
    if layer.granularity == "channel":
        if layer.kept % spatial:
            raise SpecError(f"spec.relus[{index}].kept",
                            f"a channel mask keeps whole channels of {spatial} ReLUs; "
                            f"{layer.kept} is not a multiple of {spatial}")
        mask_shape, ones = (c,), layer.kept // spatial
    else:
        mask_shape, ones = shape, layer.kept
    size = int(torch.Size(mask_shape).numel())
    if ones > size:
        raise SpecError(f"spec.relus[{index}].kept",
                        f"{layer.kept} exceeds the layer's {c * spatial} ReLUs")
    gen = torch.Generator().manual_seed(zlib.crc32(layer.name.encode()))
    flat = torch.zeros(size)
    flat[torch.randperm(size, generator=gen)[:ones]] = 1
    module = MaskedReLU(mask_shape, layer.granularity)
    module.set_mask(flat.view(mask_shape))
    return module
