"""Exact PI accounting: ReLUs, other comparisons, smooth nonlinearities, MACs, params, depth.

One analysis pass (fvcore style) runs the model once on the meta device under a
``TorchDispatchMode`` and hands every aten op that touches the private input to a
per-op handle (the tables below; conventions in docs/accounting.md):

* comparison-based activations (ReLU, a clamp's first bound, ``x > 0``) add their output
  size to the ReLU count; a two-sided clamp's other bound is a comparison when the
  convention (``tables/conventions.json``) charges it; smooth nonlinearities (GELU,
  sigmoid, softmax's elements, LayerNorm's rsqrt, a private divisor's reciprocal) are counted
  apart, by op, never as ReLUs; a partial ReLU layer (a module with ``kept`` and ``relu_count``: ``MaskedReLU``,
  ``SoftMaskReLU``) is counted as one unit when it returns, from its kept positions;
* max-pools and max reductions add ``n - 1`` comparisons per output of a window of n;
* convolutions and matmuls add MACs, computed by ``torch.utils.flop_counter``'s
  formulas (FLOPs / 2);
* ops known to be free in PI (``FREE_OPS``: data movement, additions, affine maps with
  the server's constants) add nothing; any other op is listed in ``unsupported_ops``,
  so a new nonlinearity is reported instead of silently counted as 0;
* every op propagates a per-tensor nonlinear depth, so residual paths are handled
  exactly: the depth of the output is the largest number of nonlinear layers
  (ReLU layers with at least one kept ReLU, smooth layers and max-pools) on any
  input-output path.

Counts are per input image. Stages come from the model's structure (``_split``): timm's
``feature_info`` where the model has it, else its residual blocks; where neither
decides, ``stem_relus`` is None and ``stage_split_reason`` says why.
"""
from __future__ import annotations

import contextlib
import itertools
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry
from torch.utils.weak import WeakTensorKeyDictionary

from ._probe import InputShape, input_shapes, meta_forward
from .analytic import relus_snl, snl_omitted
from .cost import CostEstimate, estimate

if TYPE_CHECKING:
    from .spec import ArchSpec

aten = torch.ops.aten


def _ops(*names: str) -> frozenset:
    """aten op packets by name, with their in-place ``name_`` variants where torch has them."""
    found = [getattr(aten, n, None) for name in names for n in (name, name + "_")]
    return frozenset(op for op in found if op is not None)


#: One comparison per output element, counted as a ReLU: ReLU and its one-sided kin, and
#: what ReLU written by hand reduces to (``x.clamp(min=0)``, ``torch.maximum(x, 0)``,
#: ``x > 0`` in ``torch.where(x > 0, x, 0)`` or ``x * (x > 0)``; the select is free).
COMPARISON_OPS = _ops(
    "relu", "threshold", "leaky_relu", "_prelu_kernel", "prelu", "rrelu_with_noise", "rrelu",
    "clamp_min", "clamp_max", "maximum", "minimum", "fmax", "fmin", "abs", "sign", "sgn",
    "gt", "ge", "lt", "le", "eq", "ne",
)
#: Two-sided clamps: one comparison per bound (``clamp`` when both bounds are given). The
#: first is a ReLU; how many more the convention charges is ``clamp_comparisons`` - 1.
TWO_SIDED_OPS = _ops("hardtanh", "hardsigmoid", "hardshrink", "softshrink")
_CLAMP = _ops("clamp")
#: Smooth nonlinearities: one evaluation per output element, by op (an exp, a reciprocal or
#: a polynomial in a protocol, never a single comparison).
SMOOTH_OPS = _ops(
    "gelu", "silu", "hardswish", "mish", "sigmoid", "tanh", "softplus", "log_sigmoid_forward",
    "elu", "celu", "selu", "glu", "exp", "exp2", "expm1", "log", "log1p", "log2", "sqrt", "rsqrt",
    "reciprocal", "erf",
)
#: Normalisations by the private data's own statistics: one rsqrt per normalised group.
NORM_OPS = _ops("native_layer_norm", "native_group_norm")
MAXPOOL_OPS = _ops("max_pool2d_with_indices", "max_pool2d", "max_pool1d", "max_pool3d_with_indices")
ADAPTIVE_MAXPOOL_OPS = _ops("adaptive_max_pool2d", "adaptive_max_pool3d")
#: Max/min reductions (global max-pooling written as ``amax``): n - 1 comparisons per output.
REDUCTION_OPS = _ops("amax", "amin", "max", "min", "argmax", "argmin")
SOFTMAX_OPS = _ops("_softmax", "_log_softmax", "_safe_softmax")
#: Elementwise products and quotients: free unless both sides are private (below).
PRODUCT_OPS = _ops("mul", "div", "where")
#: Reads at an index: free with a public index; an index computed from the input (an argmax
#: then a gather) is an oblivious lookup, which is reported unsupported.
LOOKUP_OPS = _ops("index", "gather", "index_select", "take", "take_along_dim")
#: Free in PI: data movement, constants, additions, and affine maps whose coefficients
#: are the server's own (eval-mode batch norm, average pooling, upsampling). An op on
#: private data that is neither here nor handled above is reported as unsupported.
FREE_OPS = _ops(
    "view", "_unsafe_view", "reshape", "as_strided", "t", "transpose", "permute", "expand",
    "expand_as", "contiguous", "clone", "copy", "detach", "alias", "squeeze", "unsqueeze",
    "select", "slice", "cat", "stack", "split", "split_with_sizes", "chunk", "unbind", "narrow",
    "flatten", "unflatten", "repeat", "roll", "flip",
    "constant_pad_nd", "pad", "reflection_pad1d", "reflection_pad2d", "replication_pad2d",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "_to_copy", "to", "lift_fresh",
    "lift_fresh_copy", "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "fill", "zero", "new_empty", "new_zeros", "new_ones",
    "new_full", "scalar_tensor", "arange",
    "add", "sub", "rsub", "neg", "sum", "mean", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d",
    "_native_batch_norm_legit_no_training", "upsample_nearest2d", "upsample_bilinear2d",
    "native_dropout", "dropout",
)
#: Outputs that hold constants even when built from a private tensor's shape.
_CONSTANT_OPS = _ops("empty_like", "zeros_like", "ones_like", "full_like", "new_empty", "new_zeros",
                     "new_ones", "new_full", "scalar_tensor", "arange")
_ADD_OPS = _ops("add")
_WHERE, _DIV, _LAYER_NORM = _ops("where"), _ops("div"), _ops("native_layer_norm")
#: Stats keys of the smooth class are ``smooth.<op>``: one evaluation of ``op`` per element.
_SMOOTH = "smooth."
DEFAULT_CONVENTION = "crypten"


def conventions() -> dict[str, dict[str, Any]]:
    """The counting conventions (``tables/conventions.json``): name -> rules, description, source."""
    from . import tables

    return tables.load("conventions")


def _smooth_ops(stats: dict[str, int]) -> dict[str, int]:
    return {k[len(_SMOOTH):]: v for k, v in stats.items() if k.startswith(_SMOOTH)}


def _sum_ops(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    """op -> evaluations summed over ``parts``, ops in name order."""
    return dict(sorted(sum((Counter(p) for p in parts), Counter()).items()))


@dataclass(frozen=True)
class LayerStats:
    name: str  # the module (or fx node) the ops ran in; "" is the model's own forward
    stage: str
    kind: str  # "relu", "maxpool", "softmax", "smooth", "norm" or "linear"
    shape: tuple[int, ...]  # per-image output shape
    relus: int = 0
    comparisons: int = 0
    macs: int = 0
    #: smooth evaluations by op ("gelu", "softmax", "reciprocal", "rsqrt", ...)
    smooth_ops: dict[str, int] = field(default_factory=dict)

    @property
    def smooth(self) -> int:
        return sum(self.smooth_ops.values())


@dataclass(frozen=True)
class StageStats:
    name: str
    relus: int
    comparisons: int
    macs: int
    params: int
    smooth_ops: dict[str, int] = field(default_factory=dict)

    @property
    def smooth(self) -> int:
        return sum(self.smooth_ops.values())


@dataclass(frozen=True)
class Count:
    """Per-image counts in three cost classes: ``relus`` (one comparison each),
    ``comparisons`` (the others: max-pools, max reductions, softmax's row max, the second
    bound of a two-sided clamp) and ``smooth`` (GELU, sigmoid, softmax's elements, ..., by op in
    ``smooth_ops``), under ``convention`` (docs/accounting.md)."""
    input_shape: tuple  # (C, H, W), or one such shape per forward input
    relus: int
    #: ReLUs before the first stage; None where the structure does not say where stages start.
    stem_relus: int | None
    comparisons: int
    macs: int
    params: int
    nonlinear_depth: int
    stages: tuple[StageStats, ...] = field(repr=False)
    layers: tuple[LayerStats, ...] = field(repr=False)
    #: aten ops met on private data that the accounting does not know: name -> occurrences.
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    #: Why there is no stem/stage split (None when there is one).
    stage_split_reason: str | None = None
    #: Smooth nonlinear evaluations by op; never counted as ReLUs.
    smooth_ops: dict[str, int] = field(default_factory=dict)
    convention: str = DEFAULT_CONVENTION

    @property
    def smooth(self) -> int:
        return sum(self.smooth_ops.values())

    @property
    def relus_without_stem(self) -> int | None:
        return None if self.stem_relus is None else self.relus - self.stem_relus

    def stage(self, name: str) -> StageStats:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        shape = self.input_shape
        return {
            "input_shape": list(shape) if shape and isinstance(shape[0], int) else [list(s) for s in shape],
            "convention": self.convention,
            "relus": self.relus,
            "relus_without_stem": self.relus_without_stem,
            "stem_relus": self.stem_relus,
            "stem_relu_included": True,
            "stage_split_reason": self.stage_split_reason,
            "comparisons": self.comparisons,
            "smooth": self.smooth,
            "smooth_ops": dict(self.smooth_ops),
            "macs": self.macs,
            "params": self.params,
            "nonlinear_depth": self.nonlinear_depth,
            "unsupported_ops": dict(self.unsupported_ops),
            "stages": [{**asdict(s), "smooth": s.smooth} for s in self.stages],
            "layers": [{**asdict(l), "smooth": l.smooth, "shape": list(l.shape)} for l in self.layers],
        }


@dataclass
class Record:
    """One counted op: when it ran (``step``), in which scope, and what it added."""
    step: int
    scope: str
    kind: str
    shape: tuple[int, ...]
    stats: dict[str, int]


class Analysis(TorchDispatchMode):
    """Counts every aten op of one forward pass, attributed to scopes, in execution order.

    A *scope* is what ops are attributed to: a module name for ``count`` (entered by
    forward hooks), an fx node name for the graph IR (entered by its interpreter).
    ``records`` lists the counted ops, each at its ``step`` (the index of the op in the
    pass); ``rows()`` sums them per (scope, kind). ``depth`` maps tensors to their
    nonlinear depth; ``private`` marks the tensors computed from the input (``mark_inputs``).
    Only ops on private tensors cost in PI; until inputs are marked, every tensor counts.
    """

    def __init__(self, model: nn.Module, convention: str = DEFAULT_CONVENTION) -> None:
        super().__init__()
        from . import tables

        self.convention = convention
        #: comparisons per element of a two-sided clamp under the convention
        self.clamp_sides = int(tables.lookup("conventions", convention, "counting convention")["clamp_comparisons"])
        self.stack: list[tuple[str, nn.Module | None]] = [("", model)]
        self.records: list[Record] = []
        self.step = 0
        self.depth = WeakTensorKeyDictionary()
        self.private: WeakTensorKeyDictionary | None = None
        self.unsupported: Counter[str] = Counter()
        #: (step, scope) of every addition of two private tensors of one shape: residual merges.
        self.merges: list[tuple[int, str]] = []
        # Partial ReLU layers report their kept positions; read now, before the meta
        # pass replaces their mask buffers.
        self.kept = {m: m.kept for m in model.modules() if hasattr(m, "relu_count")}
        self.handles: dict[Any, Callable[[Any, tuple, dict, Any], Any]] = {}
        for ops, handle in ((COMPARISON_OPS, self._comparison), (TWO_SIDED_OPS, self._two_sided),
                            (_CLAMP, self._clamp), (SMOOTH_OPS, self._smooth), (NORM_OPS, self._norm),
                            (MAXPOOL_OPS, self._maxpool), (ADAPTIVE_MAXPOOL_OPS, self._adaptive_maxpool),
                            (REDUCTION_OPS, self._reduction), (SOFTMAX_OPS, self._softmax),
                            (PRODUCT_OPS, self._product), (LOOKUP_OPS, self._lookup),
                            (_ops("native_batch_norm"), self._batch_norm)):
            self.handles.update(dict.fromkeys(ops, handle))
        for op in flop_registry:
            if isinstance(op, torch._ops.OpOverloadPacket):
                self.handles[op] = self._linear

    def mark_inputs(self, inputs: tuple[torch.Tensor, ...]) -> None:
        """From now on only computations on ``inputs`` (the client's data) are counted."""
        self.private = WeakTensorKeyDictionary()
        for t in inputs:
            self.private[t] = True

    def is_private(self, t: Any) -> bool:
        """Whether ``t`` holds input data; a view counts when its base does (``buf[:, :c] = x``)."""
        return isinstance(t, torch.Tensor) and (
            self.private is None or t in self.private or (t._base is not None and t._base in self.private))

    def _mark_private(self, t: torch.Tensor) -> None:
        self.private[t] = True
        if t._base is not None:  # written through a view: the whole buffer holds input data now
            self.private[t._base] = True

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

    def rows(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Per (scope, kind): the per-image ``shape`` of its first op and the summed stats."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.records:
            row = rows.setdefault((r.scope, r.kind), {"shape": r.shape})
            for key, value in r.stats.items():
                row[key] = row.get(key, 0) + value
        return rows

    # per-op handles: (kind, stats, is_nonlinear_layer), None (free), or the name under
    # which the op is reported unsupported
    def _comparison(self, func, args, kwargs, out):
        n = _first(out).numel()
        return "relu", {"relus": n}, n > 0

    def _two_sided(self, func, args, kwargs, out):
        """A clamp to [a, b]: a ReLU, and the convention's further comparisons for the other bound."""
        n = _first(out).numel()
        return "relu", {"relus": n, "comparisons": n * (self.clamp_sides - 1)}, n > 0

    def _clamp(self, func, args, kwargs, out):
        bounds = [*args[1:3], kwargs.get("min"), kwargs.get("max")]
        two_sided = sum(b is not None for b in bounds) > 1
        return (self._two_sided if two_sided else self._comparison)(func, args, kwargs, out)

    def _smooth(self, func, args, kwargs, out):
        n = _first(out).numel()
        return "smooth", {_SMOOTH + _op_name(func): n}, n > 0

    def _norm(self, func, args, kwargs, out):
        """LayerNorm/GroupNorm: mean and variance of the private data, one rsqrt per group
        (the products of the variance are Beaver multiplications, not counted here)."""
        x = args[0]
        if func.overloadpacket in _LAYER_NORM:
            groups = x.numel() // max(1, math.prod(args[1]))
        else:  # native_group_norm(input, weight, bias, N, C, HxW, group, eps)
            groups = args[3] * args[6]
        return "norm", {_SMOOTH + "rsqrt": groups}, True

    def _maxpool(self, func, args, kwargs, out):
        out = _first(out)
        kernel = args[1] if len(args) > 1 else kwargs["kernel_size"]
        window = math.prod(kernel) if len(kernel) > 1 else kernel[0] ** (out.dim() - 2)
        return "maxpool", {"comparisons": out.numel() * (window - 1)}, True

    def _adaptive_maxpool(self, func, args, kwargs, out):
        """Exact windows: output i of n over an input of size s spans [floor(i*s/n), ceil((i+1)*s/n))."""
        x, out = args[0], _first(out)
        sizes = [[-(-(i + 1) * s // n) - i * s // n for i in range(n)]
                 for s, n in zip(x.shape[2:], out.shape[2:])]
        per_channel = sum(math.prod(w) - 1 for w in itertools.product(*sizes))
        return "maxpool", {"comparisons": out.shape[1] * per_channel}, True

    def _reduction(self, func, args, kwargs, out):
        if len(args) > 1 and isinstance(args[1], torch.Tensor):  # max(x, y): elementwise
            return self._comparison(func, args, kwargs, out)
        # each output reduces a disjoint window of n inputs with n - 1 comparisons; the batch
        # is one image, so a reduction to a scalar (``x.amax()``) is n - 1 for the image
        n = args[0].numel() - _first(out).numel()
        return "maxpool", {"comparisons": n}, n > 0

    def _softmax(self, func, args, kwargs, out):
        """CrypTen's softmax: subtract the row max (n - 1 comparisons), exp each element and
        normalise by the row's sum; ``softmax`` counts the elements, and its per-element
        price covers the exp and the row's share of the reciprocal."""
        x, dim = args[0], args[1]
        rows = x.numel() // (x.shape[dim] if x.dim() else 1)
        return "softmax", {"comparisons": x.numel() - rows, _SMOOTH + "softmax": x.numel()}, True

    def _product(self, func, args, kwargs, out):
        """Free with a public side, or when one side is a comparison's mask (the select of a
        ReLU, counted at the comparison). A private divisor costs one reciprocal per element;
        a product of two private tensors is unsupported (a Beaver multiplication)."""
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if func.overloadpacket in _WHERE or any(t.dtype == torch.bool for t in tensors):
            return None
        private = [t for t in tensors if self.is_private(t)]
        if func.overloadpacket in _DIV and len(args) > 1 and self.is_private(args[1]):
            if len(private) > 1:
                return str(func.overloadpacket)
            return "smooth", {_SMOOTH + "reciprocal": args[1].numel()}, True
        return str(func.overloadpacket) if len(private) > 1 else None

    def _lookup(self, func, args, kwargs, out):
        """A read at a public index is data movement; at an index computed from the input
        (argmax then gather) it is an oblivious lookup, which is not modelled."""
        index = [t for t in tree_flatten((args[1:], kwargs))[0] if self.is_private(t)]
        return f"{func.overloadpacket} (private index)" if index else None

    def _batch_norm(self, func, args, kwargs, out):
        """Eval mode normalises with running statistics (an affine map with the server's
        constants); batch statistics would need the private data's variance."""
        training = args[5] if len(args) > 5 else kwargs.get("training", False)
        return str(func.overloadpacket) if training else None

    def _linear(self, func, args, kwargs, out):
        flops = flop_registry[func.overloadpacket](*args, **kwargs, out_val=out)
        return "linear", {"macs": flops // 2}, False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        depth = max((self.depth.get(t, 0) for t in inputs), default=0)
        private = [t for t in inputs if self.is_private(t)]
        packet = func.overloadpacket
        # Ops inside a partial ReLU layer are not counted one by one (see ``exit_scope``),
        # and computations on public values (weights, constants) cost nothing.
        if private and self.stack[-1][1] not in self.kept:
            handle = self.handles.get(packet)
            result = handle(func, args, kwargs, out) if handle else None if packet in FREE_OPS else str(packet)
            if isinstance(result, str):
                self.unsupported[result] += 1
            elif result is not None:
                kind, stats, nonlinear = result
                depth += int(nonlinear)
                self._record(kind, stats, out)
            if packet in _ADD_OPS and len(private) == 2 and private[0].shape == private[1].shape:
                self.merges.append((self.step, self.stack[-1][0]))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.depth[t] = max(depth, self.depth.get(t, 0))
                if private and self.private is not None and packet not in _CONSTANT_OPS:
                    self._mark_private(t)
        self.step += 1
        return out

    def _record(self, kind: str, stats: dict[str, int], out: Any) -> None:
        self.records.append(Record(self.step, self.stack[-1][0], kind, tuple(_first(out).shape[1:]), stats))


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _op_name(func: Any) -> str:
    """``gelu`` for aten.gelu and aten.gelu_; ``log_sigmoid`` for aten.log_sigmoid_forward."""
    return str(func.overloadpacket).removeprefix("aten.").rstrip("_").removesuffix("_forward")


def count(model: nn.Module, input_shape: InputShape, convention: str = DEFAULT_CONVENTION) -> Count:
    """Exact per-image accounting of ``model`` on an input of ``input_shape`` (C, H, W),
    under a counting ``convention`` (``conventions()``: how a two-sided clamp counts).

    A model whose forward takes several tensors gets one shape per input, in order:
    ``count(model, [(3, 32, 32), (10,)])``. The model's own forward hooks do not fire.
    """
    shapes = input_shapes(input_shape)
    analysis = Analysis(model, convention)
    spans: dict[str, list[int]] = {}  # module name -> [first entry step, last exit step]

    def enter(name: str, module: nn.Module) -> None:
        spans.setdefault(name, [analysis.step, analysis.step])
        analysis.enter_scope(name, module)

    def leave(name: str, module: nn.Module, out: Any) -> None:
        analysis.exit_scope(module, out)
        spans[name][1] = analysis.step

    with _own_hooks_only(model):
        hooks = []
        for name, module in model.named_modules():
            if name:
                hooks.append(module.register_forward_pre_hook(lambda m, _a, name=name: enter(name, m)))
                hooks.append(module.register_forward_hook(lambda m, _a, out, name=name: leave(name, m, out)))
        try:
            with analysis:
                out = meta_forward(model, shapes, on_inputs=analysis.mark_inputs)
        finally:
            for h in hooks:
                h.remove()
    depth = max((analysis.depth.get(t, 0) for t in tree_flatten(out)[0]
                 if isinstance(t, torch.Tensor)), default=0)
    split = _split(model, analysis, spans)
    return _summarise(model, shapes[0] if len(shapes) == 1 else shapes, analysis, spans, split, depth)


def count_spec(spec: ArchSpec) -> Count:
    """The count of the network ``spec`` describes, without weights (``build_for_count``):
    what synthesis, search designs and their benchmarks report before anything trains."""
    from .models import build_for_count

    return count(build_for_count(spec), spec.input_shape)


def ops_text(ops: dict[str, int]) -> str:
    """Ops and their counts as one phrase: ``gelu 1,024, softmax 64``."""
    return ", ".join(f"{op} {n:,}" for op, n in ops.items())


@dataclass(frozen=True)
class Priced:
    """A count with its PI cost under one protocol, in total and per stage (a stage pays no
    per-network constants), and, for a spec-built model, SNL's count: its networks lack one
    ReLU layer (``snl_omits``), which its published counts leave out (None otherwise)."""

    count: Count
    cost: CostEstimate
    stage_costs: tuple[CostEstimate, ...]
    relus_snl: int | None = None
    snl_omits: str | None = None

    def notes(self, label: str) -> tuple[str | None, str | None]:
        """What a reader of the count of ``label`` must be told, or None: the operators the
        accounting does not know (counted as 0), and the smooth nonlinearities it runs."""
        unknown = smooth = None
        if self.count.unsupported_ops:
            ops = ", ".join(f"{op} x{n}" for op, n in self.count.unsupported_ops.items())
            unknown = (f"{label} runs operators on its input that the accounting does not know ({ops}); "
                       "they are counted as 0 (docs/accounting.md)")
        if self.count.smooth:
            smooth = (f"{label} runs smooth nonlinearities ({ops_text(self.count.smooth_ops)}); they are not ReLUs "
                      "and cost more than a comparison in every 2PC protocol: compare it with ReLU networks by "
                      "these counts, not by ReLUs alone (docs/accounting.md)")
        return unknown, smooth

    def to_dict(self) -> dict[str, Any]:
        return {**self.count.to_dict(), "relus_snl": self.relus_snl, "snl_omits": self.snl_omits,
                "cost": self.cost.to_dict()}


def price(counted: Count, protocol: str = "delphi", costs: dict[str, dict[str, Any]] | None = None,
          spec: ArchSpec | None = None) -> Priced:
    """``counted`` priced under ``protocol`` (``costs``: the PI cost table, default the shipped
    one with the measured profiles); ``spec``, when the model was built from one, adds SNL's count."""
    total = estimate(counted.relus, counted.macs, counted.nonlinear_depth, protocol, costs, counted.smooth_ops)
    stages = tuple(estimate(s.relus, s.macs, 0, protocol, costs, s.smooth_ops, network=False)
                   for s in counted.stages)
    if spec is None:
        return Priced(counted, total, stages)
    return Priced(counted, total, stages, relus_snl(spec), snl_omitted(spec))


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs")
_GLOBAL_HOOK_DICTS = ("_global_forward_hooks", "_global_forward_pre_hooks",
                      "_global_forward_hooks_always_called")


@contextlib.contextmanager
def _own_hooks_only(model: nn.Module) -> Iterator[None]:
    """Suspend the user's forward hooks for the meta pass: they must not see meta tensors, and
    counting must not run their side effects. Hooks of torch and timm stay: they are part of
    the computation (weight norm, spectral norm, timm's hook-based feature extraction)."""
    import torch.nn.modules.module as module_mod

    owners = [(m, a) for m in model.modules() for a in _HOOK_DICTS if hasattr(m, a)]
    dicts = [getattr(m, a) for m, a in owners] + [getattr(module_mod, a) for a in _GLOBAL_HOOK_DICTS
                                                   if hasattr(module_mod, a)]
    saved = [dict(d) for d in dicts]
    for d in dicts:
        for key in [k for k, hook in d.items() if _is_users(hook)]:
            del d[key]
    try:
        yield
    finally:
        for d, before in zip(dicts, saved):
            d.clear()
            d.update(before)


def _is_users(hook: Any) -> bool:
    if isinstance(hook, bool):  # the *_always_called / *_with_kwargs dicts hold flags
        return False
    where = getattr(hook, "__module__", None) or type(hook).__module__
    return not where.split(".")[0] in ("torch", "timm")


@dataclass(frozen=True)
class _Split:
    """Where each segment ends, by op step: ops before ``stem_end`` are the stem; an op at
    step s belongs to the first cut (step, name) with s < step; later ops are the head."""
    stem_end: int | None
    cuts: tuple[tuple[int, str], ...]
    reason: str | None = None

    def segment(self, step: int) -> str:
        if self.stem_end is not None and step < self.stem_end:
            return "stem"
        return next((name for end, name in self.cuts if step < end), "head" if self.cuts else "model")


def _split(model: nn.Module, analysis: Analysis, spans: dict[str, list[int]]) -> _Split:
    """The stem/stage split from the model's structure: timm's ``feature_info`` (each tap is
    the output of a segment) where the model has it, else its residual blocks."""
    taps = [f.get("module") for f in getattr(model, "feature_info", None) or [] if isinstance(f, dict)]
    if taps and all(t in spans for t in taps):
        stages = [t for t in taps if _holds_blocks(model.get_submodule(t))]
        if not stages:
            cuts = tuple((spans[t][1], t) for t in taps)
            return _Split(None, cuts, "timm's feature_info taps are single layers, not stages of "
                                      "blocks: the model has no stem to split off")
        first = taps.index(stages[0])
        return _Split(spans[stages[0]][0], tuple((spans[t][1], t) for t in taps[first:]))
    blocks = list(dict.fromkeys(scope for _, scope in analysis.merges if scope))
    if not blocks:
        why = "no timm feature_info" if not taps else "its feature_info names modules that did not run"
        return _Split(None, (), f"{why} and no residual block (a module adding two paths of the input)")
    parent = {b: b.rsplit(".", 1)[0] if "." in b else b for b in blocks}
    containers = list(dict.fromkeys(parent.values()))
    first_block = min(spans[b][0] for b in blocks if parent[b] == containers[0])
    if any(spans[containers[0]][0] <= r.step < first_block for r in analysis.records):
        return _Split(None, tuple((spans[c][1], c) for c in containers),
                      f"'{containers[0]}' holds the first residual block but runs other layers before it, "
                      f"so where the stem ends is not structural")
    return _Split(spans[containers[0]][0], tuple((spans[c][1], c) for c in containers))


def _holds_blocks(module: nn.Module) -> bool:
    """A stage holds blocks: children that themselves contain a convolution or linear layer."""
    return any(not isinstance(c, (nn.Conv2d, nn.Linear)) and any(
        isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) for m in c.modules())
        for c in module.children())


def _summarise(model: nn.Module, input_shape: tuple, analysis: Analysis,
               spans: dict[str, list[int]], split: _Split, depth: int) -> Count:
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in analysis.records:
        row = rows.setdefault((r.scope, split.segment(r.step), r.kind), {"shape": r.shape})
        for key, value in r.stats.items():
            row[key] = row.get(key, 0) + value
    layers = tuple(LayerStats(name=name, stage=stage, kind=kind, shape=row["shape"],
                              relus=row.get("relus", 0), comparisons=row.get("comparisons", 0),
                              macs=row.get("macs", 0), smooth_ops=_smooth_ops(row))
                   for (name, stage, kind), row in rows.items())
    params_by_stage: Counter[str] = Counter()
    for pname, p in model.named_parameters():
        owner = pname.rsplit(".", 1)[0] if "." in pname else ""
        while owner and owner not in spans:  # a module that never ran: its nearest ancestor that did
            owner = owner.rsplit(".", 1)[0] if "." in owner else ""
        params_by_stage[split.segment(spans[owner][0]) if owner else split.segment(0)] += p.numel()
    order = ["stem", *(name for _, name in split.cuts), "head", "model"]
    names = [s for s in order if s in {l.stage for l in layers} or s in params_by_stage]
    stages = tuple(
        StageStats(
            name=s,
            relus=sum(l.relus for l in layers if l.stage == s),
            comparisons=sum(l.comparisons for l in layers if l.stage == s),
            macs=sum(l.macs for l in layers if l.stage == s),
            params=params_by_stage.get(s, 0),
            smooth_ops=_sum_ops(l.smooth_ops for l in layers if l.stage == s),
        )
        for s in names
    )
    return Count(
        input_shape=input_shape,
        relus=sum(l.relus for l in layers),
        stem_relus=None if split.stem_end is None else sum(l.relus for l in layers if l.stage == "stem"),
        comparisons=sum(l.comparisons for l in layers),
        macs=sum(l.macs for l in layers),
        params=sum(p.numel() for p in model.parameters()),
        nonlinear_depth=depth,
        stages=stages,
        layers=layers,
        unsupported_ops=dict(sorted(analysis.unsupported.items())),
        stage_split_reason=split.reason,
        smooth_ops=_sum_ops(l.smooth_ops for l in layers),
        convention=analysis.convention,
    )
