"""Turn an ``ArchSpec`` into a runnable timm ResNet.

timm's ResNet is built with the spec's blocks, depths and widths, then two of its
traps are handled here once: its plain stem is always 64 wide (so the stem and
layer1 are rebuilt through timm's own ``make_blocks`` at the spec's stem width), and
its stem is the ImageNet one (so a CIFAR spec swaps in a 3x3 conv and drops the
max-pool). ReLU states are applied last: removed layers become ``nn.Identity`` and
masked ones ``MaskedReLU`` sized by a meta-device shape pass.

This is the raw constructor; ``reshape.models.build`` and the timm entrypoints call it
through timm's ``build_model_with_cfg`` (``_registry``), which adds the pretrained cfg,
feature extraction and timm's standard kwargs.

Block kinds timm's ResNet does not build (``preact``) come from the family module that
adds its network class to ``NETWORKS`` (``wrn``); ReLU states are applied to them the
same way, by module name.
"""
from __future__ import annotations

import os
import zlib
from typing import Callable

import torch
from torch import nn
from timm.models.resnet import BasicBlock, Bottleneck, ResNet, make_blocks

from .._probe import output_shapes
from ..analytic import spec_params
from ..errors import ReshapeError, SpecError, first_line, is_out_of_memory
from ..layers import MaskedReLU
from ..spec import ArchSpec, ReluLayer

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
#: Network constructors of the block kinds that are not timm ResNets, added by their family
#: module on import (``reshape.models`` imports them all); called as
#: ``network(spec, drop_rate=, drop_path_rate=, global_pool=)``.
NETWORKS: dict[str, Callable[..., nn.Module]] = {}


def build(spec: ArchSpec, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
          global_pool: str = "avg") -> nn.Module:
    """A freshly initialised model for ``spec`` (train mode) with timm's standard head and
    regularisation arguments. No spec is stored on the model: ``spec_of`` reads it back.

    A spec too large for this machine is refused before anything is allocated (an
    allocation that the OS grants lazily would otherwise swap the machine to a halt),
    and one that still fails to allocate, or overflows a tensor size even on the meta
    device, becomes a ``ReshapeError`` naming its widths.
    """
    require_memory(spec)
    kwargs = dict(drop_rate=drop_rate, drop_path_rate=drop_path_rate, global_pool=global_pool)
    try:
        model = NETWORKS[spec.block](spec, **kwargs) if spec.block in NETWORKS else _timm_resnet(spec, **kwargs)
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise ReshapeError(f"not enough memory to build {_describe(spec)} ({first_line(exc)}); "
                           "use narrower widths") from None
    _apply_relu_states(model, spec)
    return model


def _timm_resnet(spec: ArchSpec, drop_rate: float, drop_path_rate: float, global_pool: str) -> ResNet:
    block = BLOCKS[spec.block]
    model = ResNet(
        block=block,
        layers=spec.depths,
        channels=spec.widths,
        num_classes=spec.num_classes,
        in_chans=spec.in_chans,
        global_pool=global_pool,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
    )
    _set_stem(model, spec, block, drop_path_rate)
    model.init_weights()
    return model


def _describe(spec: ArchSpec) -> str:
    return f"{spec.name or 'the spec'} (stem width {spec.stem.width}, stage widths {'/'.join(map(str, spec.widths))})"


def require_memory(spec: ArchSpec) -> None:
    """Refuse a spec whose fp32 parameters alone exceed the memory available now (CPU builds only);
    commands call it before they claim an output folder, so a spec too large leaves nothing behind."""
    if torch.empty(0).device.type != "cpu":
        return
    free = _available_bytes()
    need = 4 * spec_params(spec)
    if free is not None and need > free:
        raise ReshapeError(f"not enough memory to build {_describe(spec)}: its {spec_params(spec):,} parameters "
                           f"take {need / 2**30:,.1f} GiB and {free / 2**30:,.1f} GiB are available; "
                           "use narrower widths")


def _available_bytes() -> int | None:
    """Memory available to new allocations (Linux MemAvailable, else free pages), None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _set_stem(model: ResNet, spec: ArchSpec, block: type[nn.Module], drop_path_rate: float) -> None:
    stem = spec.stem
    model.conv1 = nn.Conv2d(
        spec.in_chans, stem.width, kernel_size=stem.kernel, stride=stem.stride,
        padding=stem.kernel // 2, bias=False,
    )
    model.bn1 = nn.BatchNorm2d(stem.width)
    model.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem.pool else nn.Identity()
    if stem.width != 64:  # timm built the stages for a 64-wide stem: rebuild at the spec's width
        stages, feature_info = make_blocks(
            (block,) * len(spec.stages), spec.widths, spec.depths, stem.width,
            drop_path_rate=drop_path_rate,
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
