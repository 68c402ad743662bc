"""torch.fx tracing with leaf modules, and per-node shapes and PI counts.

Tracing follows timm's fx helpers: modules timm registers as not traceable
(``timm.layers.get_notrace_modules``), modules with their own ReLU count
(``MaskedReLU``) and the ones the user names stay opaque leaf nodes. A failure
names the module being traced so the user can make it a leaf.

Per-node numbers come from the accounting of ``reshape.count`` (one meta-device
pass, the same per-op handles), attributed to fx nodes instead of modules: no
second counter exists.
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable

import torch
from torch import fx, nn

from .._probe import meta_forward
from ..accounting import Analysis
from ..errors import ReshapeError

LeafSpec = Iterable["str | type[nn.Module]"]


class _Tracer(fx.Tracer):
    """An fx tracer that keeps timm's and the user's leaf modules opaque and remembers where it is."""

    def __init__(self, leaf_modules: LeafSpec = ()) -> None:
        from timm.layers import get_notrace_functions, get_notrace_modules

        super().__init__(autowrap_functions=tuple(get_notrace_functions()))
        leaves = list(leaf_modules)
        self.leaf_types = tuple({*get_notrace_modules(), *(t for t in leaves if isinstance(t, type))})
        self.leaf_names = {n for n in leaves if isinstance(n, str)}
        self.failed: str | None = None  # the innermost module whose tracing raised

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        # A module that reports its own ReLU count (MaskedReLU) is one activation layer.
        return (qualname in self.leaf_names or isinstance(m, self.leaf_types)
                or hasattr(m, "relu_count") or super().is_leaf_module(m, qualname))

    def call_module(self, m: nn.Module, forward: Any, args: tuple, kwargs: dict) -> Any:
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed is None:
                self.failed = self.path_of_module(m)
            raise


def trace_module(model: nn.Module, leaf_modules: LeafSpec = ()) -> fx.GraphModule:
    """``model`` as an fx GraphModule sharing its submodules; ReshapeError if it cannot be traced
    or a leaf named by its qualified name is none of its modules."""
    leaf_modules = list(leaf_modules)
    _check_leaves(model, [leaf for leaf in leaf_modules if isinstance(leaf, str)])
    tracer = _Tracer(leaf_modules)
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises many types; all mean "this module is not traceable"
        where = tracer.failed or ""
        module = model.get_submodule(where) if where else model
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ReshapeError(
            f"cannot trace module '{where or '<root>'}' ({type(module).__name__}): {first}; "
            f"make it an opaque node: name '{where}' in $leaf_modules"
        ) from None
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def _check_leaves(model: nn.Module, names: list[str]) -> None:
    """A leaf name that is no module of ``model`` would be silently ignored by the tracer: refuse it."""
    modules = [name for name, _ in model.named_modules() if name]
    for leaf in names:
        if leaf not in modules:
            close = difflib.get_close_matches(leaf, modules, n=3)
            hint = f"close matches: {', '.join(close)}" if close else "module names look like layer1.0.conv1"
            raise ReshapeError(f"leaf module '{leaf}' of $leaf_modules: {type(model).__name__} has no module of "
                               f"that name ({hint})", param="leaf_modules")


class _NodeRecorder(fx.Interpreter):
    """Runs a GraphModule node by node, keying the accounting rows by node name."""

    def __init__(self, gm: fx.GraphModule, analysis: Analysis) -> None:
        super().__init__(gm)
        self.analysis = analysis
        self.shapes: dict[str, tuple[int, ...]] = {}

    def run_node(self, n: fx.Node) -> Any:
        module = self.module.get_submodule(n.target) if n.op == "call_module" else None
        self.analysis.enter_scope(n.name, module)
        out = super().run_node(n)
        self.analysis.exit_scope(module, out)
        if isinstance(out, torch.Tensor):
            self.shapes[n.name] = tuple(out.shape[1:])
        return out


class _Run(nn.Module):
    """Lets ``meta_forward`` swap the GraphModule's tensors for meta ones around the interpreter."""

    def __init__(self, gm: fx.GraphModule, recorder: _NodeRecorder) -> None:
        super().__init__()
        self.gm = gm
        self.recorder = recorder

    def forward(self, x: torch.Tensor) -> Any:
        return self.recorder.run(x)


def node_stats(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    """Per fx node: per-image output ``shape``, ``relus``, ``macs`` and the accounting ``kinds`` seen."""
    analysis = Analysis(gm)
    recorder = _NodeRecorder(gm, analysis)
    with analysis:
        meta_forward(_Run(gm, recorder), input_shape, on_inputs=analysis.mark_inputs)
    stats: dict[str, dict[str, Any]] = {
        name: {"shape": shape, "relus": 0, "macs": 0, "kinds": set()}
        for name, shape in recorder.shapes.items()
    }
    for (name, kind), row in analysis.rows().items():
        entry = stats.setdefault(name, {"shape": row["shape"], "relus": 0, "macs": 0, "kinds": set()})
        entry["relus"] += row.get("relus", 0)
        entry["macs"] += row.get("macs", 0)
        entry["kinds"].add(kind)
    return stats
