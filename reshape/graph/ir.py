"""The graph IR: an fx GraphModule mirrored as a networkx DiGraph, with residual blocks.

Each node of ``ModelGraph.graph`` is an fx node name and carries ``op`` (fx opcode),
``kind`` (input, conv, norm, act, pool, linear, identity, add, output or the callee's
name), ``module`` and ``module_type`` (for module calls), ``scope`` (the innermost
module the node runs in), per-image output ``shape``, ``relus`` and ``macs``.

A residual **block** is the subgraph between a fork and its add: the add's immediate
dominator (networkx) is the fork, the block is every node on a fork -> add path,
plus the nodes right after the add that still run inside the block's module (timm's
post-add ReLU). The fx GraphModule stays the source of truth: passes rewrite it and
``ModelGraph.of`` re-derives this view, so ``to_module()`` is always runnable.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import networkx as nx
import torch
from timm.layers import DropBlock2d, DropPath
from torch import fx, nn

from ..errors import ReshapeError
from ._trace import LeafSpec, node_stats, trace_module

_ADDS = {operator.add, operator.iadd, torch.add}
_MODULE_KINDS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.modules.conv._ConvNd, "conv"),
    (nn.modules.batchnorm._BatchNorm, "norm"),
    (nn.Linear, "linear"),
    (nn.Identity, "identity"),  # the rest are identities in eval mode, where merges happen
    (nn.Dropout, "identity"),
    (DropPath, "identity"),
    (DropBlock2d, "identity"),
)


@dataclass(frozen=True)
class Block:
    """One residual block: the nodes between a fork and its add (and the block's post-add nodes)."""

    name: str  # the block's module scope, e.g. "layer2.0" (the add node's name outside any module)
    module_type: str
    fork: str  # node feeding both branches
    add: str
    main: tuple[str, ...]  # residual branch, fork (exclusive) -> add (exclusive), in order
    shortcut: tuple[str, ...]  # empty for an identity shortcut
    tail: tuple[str, ...]  # nodes after the add inside the block scope (post-add ReLU)
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    relus: int
    macs: int
    inner_relu_layers: tuple[str, ...]  # activation nodes on the residual branch
    inner_relus: int

    @property
    def shortcut_kind(self) -> str:
        return "projection" if self.shortcut else "identity"

    @property
    def stride(self) -> int:
        return -(-self.in_shape[-1] // self.out_shape[-1])  # ceil: odd sizes shrink to ceil(H / s)

    @property
    def nodes(self) -> tuple[str, ...]:
        return (*self.main, *self.shortcut, self.add, *self.tail)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.module_type, "stride": self.stride,
            "shortcut": self.shortcut_kind, "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape), "relus": self.relus, "macs": self.macs,
            "inner_relus": self.inner_relus, "inner_relu_layers": list(self.inner_relu_layers),
        }


@dataclass
class ModelGraph:
    """A traced model: the runnable GraphModule, its networkx view and its residual blocks."""

    module: fx.GraphModule
    graph: nx.DiGraph
    input_shape: tuple[int, ...]
    blocks: tuple[Block, ...]

    @classmethod
    def of(cls, gm: fx.GraphModule, input_shape: tuple[int, ...]) -> "ModelGraph":
        """The IR of an fx GraphModule (re-run after every rewrite)."""
        graph = _digraph(gm, node_stats(gm, tuple(input_shape)))
        return cls(gm, graph, tuple(input_shape), _blocks(graph))

    def to_module(self) -> fx.GraphModule:
        return self.module

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        known = ", ".join(b.name for b in self.blocks) or "none"
        raise ReshapeError(f"no residual block named '{name}'; blocks: {known}")

    @property
    def relus(self) -> int:
        return sum(d["relus"] for _, d in self.graph.nodes(data=True))

    @property
    def macs(self) -> int:
        return sum(d["macs"] for _, d in self.graph.nodes(data=True))


def trace(model: nn.Module, input_shape: tuple[int, ...], leaf_modules: LeafSpec = ()) -> ModelGraph:
    """Trace ``model`` for inputs of ``input_shape`` (C, H, W).

    ``leaf_modules`` (qualified names or module types) stay opaque single nodes.
    """
    return ModelGraph.of(trace_module(model, leaf_modules), input_shape)


def _digraph(gm: fx.GraphModule, stats: dict[str, dict[str, Any]]) -> nx.DiGraph:
    g = nx.DiGraph(scope_types={})
    for n in gm.graph.nodes:
        stack = n.meta.get("nn_module_stack", {})
        g.graph["scope_types"].update({path: t.__name__ for path, t in stack.values()})
        s = stats.get(n.name, {"shape": (), "relus": 0, "macs": 0, "kinds": set()})
        module = gm.get_submodule(n.target) if n.op == "call_module" else None
        scope = [path for path, _ in stack.values()]
        g.add_node(
            n.name, op=n.op, kind=_kind(n, module, s["kinds"]),
            module=n.target if module is not None else None,
            module_type=type(module).__name__ if module is not None else None,
            scope=n.target if module is not None else (scope[-1] if scope else ""),
            shape=tuple(s["shape"]), relus=s["relus"], macs=s["macs"],
        )
        for src in n.all_input_nodes:
            g.add_edge(src.name, n.name)
    return g


def _kind(n: fx.Node, module: nn.Module | None, kinds: set[str]) -> str:
    if n.op in ("placeholder", "output"):
        return "input" if n.op == "placeholder" else "output"
    if kinds & {"relu", "smooth"}:  # an activation, comparison-based or smooth
        return "act"
    if "maxpool" in kinds:
        return "pool"
    if module is not None:
        return next((kind for t, kind in _MODULE_KINDS if isinstance(module, t)),
                    type(module).__name__.lower())
    if n.op == "call_function" and n.target in _ADDS:
        return "add"
    return getattr(n.target, "__name__", str(n.target))


def _blocks(g: nx.DiGraph) -> tuple[Block, ...]:
    start = next(n for n, d in g.nodes(data=True) if d["op"] == "placeholder")
    idom = nx.immediate_dominators(g, start)
    blocks = []
    for add in nx.topological_sort(g):
        if g.nodes[add]["kind"] != "add" or g.in_degree(add) != 2:
            continue
        fork = idom[add]
        branches = [_branch(g, fork, src) for src in g.predecessors(add)]
        main, shortcut = sorted(branches, key=lambda b: _cost(g, b), reverse=True)
        scope = _common_scope([g.nodes[n]["scope"] for n in (*main, *shortcut, add)])
        tail = _tail(g, add, scope)
        nodes = (*main, *shortcut, add, *tail)
        acts = tuple(n for n in main if g.nodes[n]["kind"] == "act")
        blocks.append(Block(
            name=scope or add, module_type=g.graph["scope_types"].get(scope, ""),
            fork=fork, add=add, main=main, shortcut=shortcut, tail=tail, in_shape=g.nodes[fork]["shape"],
            out_shape=g.nodes[nodes[-1]]["shape"],
            relus=sum(g.nodes[n]["relus"] for n in nodes),
            macs=sum(g.nodes[n]["macs"] for n in nodes),
            inner_relu_layers=tuple(g.nodes[n]["module"] or n for n in acts),
            inner_relus=sum(g.nodes[n]["relus"] for n in acts),
        ))
    return tuple(blocks)


def _branch(g: nx.DiGraph, fork: str, end: str) -> tuple[str, ...]:
    """The chain of nodes from ``fork`` (exclusive) to ``end`` (inclusive), in order."""
    between = nx.descendants(g, fork) & (nx.ancestors(g, end) | {end})
    return tuple(n for n in nx.topological_sort(g.subgraph(between)))


def _cost(g: nx.DiGraph, branch: tuple[str, ...]) -> tuple[int, int]:
    return (sum(g.nodes[n]["relus"] for n in branch), sum(g.nodes[n]["macs"] for n in branch))


def _common_scope(scopes: list[str]) -> str:
    parts = [s.split(".") for s in scopes if s]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) > 1:
            break
        common.append(level[0])
    return ".".join(common)


def _tail(g: nx.DiGraph, add: str, scope: str) -> tuple[str, ...]:
    tail, node = [], add
    while g.out_degree(node) == 1:
        node = next(iter(g.successors(node)))
        s = g.nodes[node]["scope"]
        if not scope or not (s == scope or s.startswith(scope + ".")) or g.in_degree(node) != 1:
            break
        tail.append(node)
    return tuple(tail)
