"""Exact PI accounting: ReLUs, max-pool comparisons, MACs, params and nonlinear depth.

One analysis pass (fvcore style) runs the model once on the meta device under a
``TorchDispatchMode`` and hands every aten op to a per-op handle:

* nonlinear activations add their output size to the ReLU count; a partial ReLU
  layer (a module with ``kept`` and ``relu_count``: ``MaskedReLU``, ``SoftMaskReLU``)
  is counted as one unit when it returns, from its kept positions;
* max-pools add ``k*k - 1`` comparisons per output element;
* convolutions and matmuls add MACs, computed by ``torch.utils.flop_counter``'s
  formulas (FLOPs / 2);
* every op propagates a per-tensor nonlinear depth, so residual paths are handled
  exactly: the depth of the output is the largest number of nonlinear layers
  (ReLU layers with at least one kept ReLU, and max-pools) on any input-output path.

Counts are per input image. Stages are read from module names: ``layer<k>`` (timm
and torchvision ResNets), ``stages.<k>``, ``blocks.<k>``, ``features.<k>``; what runs
before the first stage is the ``stem``, what runs after the last is the ``head``.
The stem ReLU is counted in ``relus``; ``relus_without_stem`` gives SNL's convention.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry
from torch.utils.weak import WeakTensorKeyDictionary

from ._probe import meta_forward

if TYPE_CHECKING:
    from .spec import ArchSpec

aten = torch.ops.aten

#: Elementwise nonlinearities: each output element is one ReLU-class evaluation in PI.
NONLINEAR_OPS = {
    aten.relu, aten.relu_, aten.threshold, aten.gelu, aten.silu, aten.silu_,
    aten.hardtanh, aten.hardtanh_, aten.leaky_relu, aten.leaky_relu_, aten.elu, aten.elu_,
    aten.hardswish, aten.hardswish_, aten.hardsigmoid, aten.sigmoid, aten.tanh,
    aten._prelu_kernel, aten.mish,
}
MAXPOOL_OPS = {aten.max_pool2d_with_indices, aten.max_pool2d, aten.max_pool1d, aten.max_pool3d_with_indices}
_STAGE_RE = re.compile(r"^(layer\d+|(?:stages|blocks|features)\.\d+)(?:\.|$)")


@dataclass(frozen=True)
class LayerStats:
    name: str
    stage: str
    kind: str  # "relu", "maxpool" or "linear"
    shape: tuple[int, ...]  # per-image output shape
    relus: int = 0
    comparisons: int = 0
    macs: int = 0


@dataclass(frozen=True)
class StageStats:
    name: str
    relus: int
    comparisons: int
    macs: int
    params: int


@dataclass(frozen=True)
class Count:
    input_shape: tuple[int, ...]
    relus: int
    stem_relus: int
    comparisons: int
    macs: int
    params: int
    nonlinear_depth: int
    stages: tuple[StageStats, ...] = field(repr=False)
    layers: tuple[LayerStats, ...] = field(repr=False)

    @property
    def relus_without_stem(self) -> int:
        return self.relus - self.stem_relus

    def stage(self, name: str) -> StageStats:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "relus": self.relus,
            "relus_without_stem": self.relus_without_stem,
            "stem_relus": self.stem_relus,
            "stem_relu_included": True,
            "maxpool_comparisons": self.comparisons,
            "macs": self.macs,
            "params": self.params,
            "nonlinear_depth": self.nonlinear_depth,
            "stages": [asdict(s) for s in self.stages],
            "layers": [{**asdict(l), "shape": list(l.shape)} for l in self.layers],
        }


class Analysis(TorchDispatchMode):
    """Accumulates per-scope stats for every aten op of one forward pass.

    A *scope* is what ops are attributed to: a module name for ``count`` (entered by
    forward hooks), an fx node name for the graph IR (entered by its interpreter).
    ``rows[(scope, kind)]`` holds the per-image ``shape`` and summed ``relus``,
    ``comparisons`` and ``macs``; ``depth`` maps tensors to their nonlinear depth.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.stack: list[tuple[str, nn.Module]] = [("", model)]
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.depth = WeakTensorKeyDictionary()
        # Partial ReLU layers report their kept positions; read now, before the meta
        # pass replaces their mask buffers.
        self.kept = {m: m.kept for m in model.modules() if hasattr(m, "relu_count")}
        self.handles: dict[Any, Callable[[Any, tuple, dict, Any], tuple[str, dict[str, int], bool]]] = {}
        for op in NONLINEAR_OPS:
            self.handles[op] = self._nonlinear
        for op in MAXPOOL_OPS:
            self.handles[op] = self._maxpool
        for op in flop_registry:
            if isinstance(op, torch._ops.OpOverloadPacket):
                self.handles[op] = self._linear

    def enter_scope(self, name: str, module: nn.Module | None) -> None:
        self.stack.append((name, module))

    def exit_scope(self, module: nn.Module | None, out: Any) -> None:
        """Close the innermost scope; a partial ReLU layer is counted whole here, from its
        kept positions (its inner ops are not counted one by one)."""
        if module in self.kept:
            n = module.relu_count(tuple(out.shape[1:]), self.kept[module])
            self._record("relu", {"relus": n}, out)
            self.depth[out] = self.depth.get(out, 0) + int(n > 0)
        self.stack.pop()

    # per-op handles: return (kind, stats, is_nonlinear_layer)
    def _nonlinear(self, func, args, kwargs, out):
        n = out[0].numel()
        return "relu", {"relus": n}, n > 0

    def _maxpool(self, func, args, kwargs, out):
        out = out[0] if isinstance(out, tuple) else out
        kernel = args[1] if len(args) > 1 else kwargs["kernel_size"]
        window = math.prod(kernel) if len(kernel) > 1 else kernel[0] ** (out.dim() - 2)
        return "maxpool", {"comparisons": out[0].numel() * (window - 1)}, True

    def _linear(self, func, args, kwargs, out):
        flops = flop_registry[func.overloadpacket](*args, **kwargs, out_val=out)
        return "linear", {"macs": flops // 2}, False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        depth = max((self.depth.get(t, 0) for t in inputs), default=0)
        # Ops inside a partial ReLU layer are not counted one by one (see ``exit_scope``).
        handle = None if self.stack[-1][1] in self.kept else self.handles.get(func.overloadpacket)
        if handle is not None:
            kind, stats, nonlinear = handle(func, args, kwargs, out)
            depth += int(nonlinear)
            self._record(kind, stats, out)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.depth[t] = max(depth, self.depth.get(t, 0))
        return out

    def _record(self, kind: str, stats: dict[str, int], out: Any) -> None:
        name = self.stack[-1][0]
        first = out[0] if isinstance(out, tuple) else out
        row = self.rows.setdefault((name, kind), {"shape": tuple(first.shape[1:])})
        for key, value in stats.items():
            row[key] = row.get(key, 0) + value


def count(model: nn.Module, input_shape: tuple[int, ...]) -> Count:
    """Exact per-image accounting of ``model`` on an input of ``input_shape`` (C, H, W)."""
    input_shape = tuple(input_shape)
    analysis = Analysis(model)
    hooks = []
    for name, module in model.named_modules():
        if not name:
            continue
        hooks.append(module.register_forward_pre_hook(
            lambda m, _args, name=name: analysis.enter_scope(name, m)))
        hooks.append(module.register_forward_hook(lambda m, _args, out: analysis.exit_scope(m, out)))
    try:
        with analysis:
            out = meta_forward(model, input_shape)
    finally:
        for h in hooks:
            h.remove()
    depth = max((analysis.depth.get(t, 0) for t in tree_flatten(out)[0]
                 if isinstance(t, torch.Tensor)), default=0)
    return _summarise(model, input_shape, analysis.rows, depth)


def count_spec(spec: ArchSpec) -> Count:
    """The count of the network ``spec`` describes, without weights (``build_for_count``):
    what synthesis, search designs and their benchmarks report before anything trains."""
    from .models import build_for_count

    return count(build_for_count(spec), spec.input_shape)


def _summarise(model: nn.Module, input_shape: tuple[int, ...],
               rows: dict[tuple[str, str], dict[str, Any]], depth: int) -> Count:
    order = _stage_order([name for name, _ in rows])
    layers = tuple(
        LayerStats(name=name, stage=order[name], kind=kind, shape=row.pop("shape"), **row)
        for (name, kind), row in rows.items()
    )
    params_by_stage: dict[str, int] = {}
    module_stage = _stage_order([n for n, _ in model.named_modules() if n])
    for pname, p in model.named_parameters():
        owner = pname.rsplit(".", 1)[0] if "." in pname else ""
        stage = module_stage.get(owner, "stem" if not owner else "head")
        params_by_stage[stage] = params_by_stage.get(stage, 0) + p.numel()
    names = list(dict.fromkeys([*(l.stage for l in layers), *params_by_stage]))
    names.sort(key=lambda s: (s != "stem", s == "head"))
    stages = tuple(
        StageStats(
            name=s,
            relus=sum(l.relus for l in layers if l.stage == s),
            comparisons=sum(l.comparisons for l in layers if l.stage == s),
            macs=sum(l.macs for l in layers if l.stage == s),
            params=params_by_stage.get(s, 0),
        )
        for s in names
    )
    return Count(
        input_shape=input_shape,
        relus=sum(l.relus for l in layers),
        stem_relus=sum(l.relus for l in layers if l.stage == "stem"),
        comparisons=sum(l.comparisons for l in layers),
        macs=sum(l.macs for l in layers),
        params=sum(p.numel() for p in model.parameters()),
        nonlinear_depth=depth,
        stages=stages,
        layers=layers,
    )


def _stage_order(names: list[str]) -> dict[str, str]:
    """Map module names (in execution order) to stages; unstaged names before the first stage are the stem."""
    result: dict[str, str] = {}
    seen_stage = False
    for name in names:
        m = _STAGE_RE.match(name)
        if m:
            seen_stage = True
            result[name] = m.group(1)
        else:
            result[name] = "head" if seen_stage else "stem"
    return result
