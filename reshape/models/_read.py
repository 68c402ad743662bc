"""Read a built model back as a spec, from its modules: ``spec_of(model)``.

Nothing is stored on the model, so nothing goes stale: SNL's mask swap, a method that
removes or masks ReLUs in place, or a graph rewrite changes the modules, and the spec
read afterwards says so (or, for a rewrite the format cannot describe, refuses to).
The structure (block kind, stage widths and depths, stem) is read from the timm ResNet
and checked exactly: the model rebuilt from the spec read must hold the same parameter
shapes, so a variant the spec cannot express (squeeze-excitation, anti-aliasing,
avg-pool downsampling) is refused by name rather than misread.
"""
from __future__ import annotations

from typing import Callable

import torch
from timm.models import get_model_input_config
from timm.models.resnet import ResNet
from torch import fx, nn

from ..analytic import relu_sizes
from ..errors import ReshapeError
from ..layers import MaskedReLU, SoftMaskReLU
from ..spec import ArchSpec, ReluLayer, Stage, Stem
from ._builder import BLOCKS, build

#: Block class -> spec block kind.
_KINDS = {cls: kind for kind, cls in BLOCKS.items()}

#: Structure readers of network classes that are not timm ResNets, added by their family
#: module: ``reader(model, input_size) -> ArchSpec`` (no ReLU states: ``spec_of`` reads those
#: and checks the structure against a rebuild for every class alike).
READERS: dict[type[nn.Module], Callable[[nn.Module, int], ArchSpec]] = {}


def spec_of(model: nn.Module, input_size: int | None = None) -> ArchSpec:
    """The spec that describes ``model`` as it is now, read from its modules.

    ``input_size`` defaults to the model's own (timm's ``img_size`` trait or its pretrained
    cfg's input size). ReLU states: ``nn.ReLU`` kept, ``nn.Identity`` removed, and a layer
    with a ReLU count (``MaskedReLU``, SNL's ``SoftMaskReLU``) masked with that count. The
    name is the timm architecture for a registered family, else empty (labels are not
    part of the network).
    """
    spec = _structure(model, input_size)
    sizes = relu_sizes(spec)
    return spec.with_relus(_relu_state(model, name, sizes[name]) for name in spec.relu_names())


def _structure(model: nn.Module, input_size: int | None) -> ArchSpec:
    if type(model) in READERS:
        spec = READERS[type(model)](model, input_size or _input_side(model)).replace(name=_family(model))
        _check_exact(model, spec)
        return spec
    if isinstance(model, fx.GraphModule):
        raise ReshapeError("the model is rewritten by graph passes (a torch.fx GraphModule): merged blocks "
                           "have no spec; a rewritten run is its spec.json plus graph.json "
                           "(reshape.runs.load_rewritten)")
    if not isinstance(model, ResNet):
        raise ReshapeError(f"the model is a timm {type(model).__name__}, not a ResNet; the spec format "
                           "describes plain ResNets (BasicBlock or Bottleneck)")
    if not isinstance(model.conv1, nn.Conv2d):
        raise ReshapeError("the model has a deep stem (conv1 is a stack of convs, as in timm's resnet*c/d "
                           "variants); the spec format has a single-conv stem")
    conv, pooled = model.conv1, isinstance(model.maxpool, nn.MaxPool2d)
    kind = {((3, 3), False): "cifar", ((7, 7), True): "imagenet"}.get((conv.kernel_size, pooled))
    if kind is None:
        raise ReshapeError(f"the stem is a {conv.kernel_size[0]}x{conv.kernel_size[1]} conv "
                           f"{'with' if pooled else 'without'} max-pool; the spec format has 3x3 without "
                           "(cifar) and 7x7 with (imagenet)")
    stages = []
    while hasattr(model, f"layer{len(stages) + 1}"):
        layer = getattr(model, f"layer{len(stages) + 1}")
        kinds = {_KINDS.get(type(block)) for block in layer}
        if len(kinds) != 1 or None in kinds:
            names = sorted({type(block).__name__ for block in layer})
            raise ReshapeError(f"stage {len(stages) + 1} has blocks {', '.join(names)}; the spec format "
                               f"has one block kind per network ({', '.join(BLOCKS)})")
        stages.append(Stage(width=layer[0].conv1.out_channels, depth=len(layer)))
    spec = ArchSpec(
        block=_KINDS[type(model.layer1[0])], stages=tuple(stages),
        stem=Stem(kind=kind, width=conv.out_channels, stride=conv.stride[0]),
        num_classes=model.num_classes, in_chans=conv.in_channels,
        input_size=input_size or _input_side(model), name=_family(model))
    _check_exact(model, spec)
    return spec


def _input_side(model: nn.Module) -> int:
    _, height, width = get_model_input_config(model)["input_size"]
    if height != width:
        raise ReshapeError(f"the model's input is {height}x{width}; spec-built models take square inputs")
    return int(height)


def _family(model: nn.Module) -> str:
    arch = getattr(model, "pretrained_cfg", {}).get("architecture") or ""
    return "" if arch == "reshape_spec" else arch


def _check_exact(model: nn.Module, spec: ArchSpec) -> None:
    """Refuse a model whose parameters (outside the ReLU layers) differ from ``spec``'s build."""
    with torch.device("meta"):
        rebuilt = build(spec)
    sites = tuple(f"{name}." for name in spec.relu_names())
    ours, theirs = _shapes(rebuilt, sites), _shapes(model, sites)
    if ours != theirs:
        extra = sorted(set(theirs) - set(ours)) or sorted(k for k in theirs if theirs[k] != ours.get(k))
        hint = extra[0] if extra else sorted(set(ours) - set(theirs))[0]
        raise ReshapeError(f"the model's layers differ from the plain ResNet its structure reads as (first: "
                           f"'{hint}'): a variant the spec format cannot express, such as squeeze-excitation, "
                           "attention, anti-aliasing or avg-pool downsampling")


def _shapes(model: nn.Module, sites: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in model.named_parameters() if not name.startswith(sites)}


def _relu_state(model: nn.Module, name: str, size: int) -> ReluLayer:
    module = model.get_submodule(name)
    if isinstance(module, nn.ReLU):
        return ReluLayer(name, "kept")
    if isinstance(module, nn.Identity):
        return ReluLayer(name, "removed")
    if isinstance(module, (MaskedReLU, SoftMaskReLU)):
        gates = module.mask if isinstance(module, MaskedReLU) else module.alpha
        per_position = size // gates.numel() if module.granularity == "channel" else 1
        return ReluLayer(name, "masked", kept=module.kept * per_position, granularity=module.granularity)
    raise ReshapeError(f"ReLU layer '{name}' is a {type(module).__name__}, which the spec format has no "
                       "state for (kept: nn.ReLU, removed: nn.Identity, masked: MaskedReLU)")
