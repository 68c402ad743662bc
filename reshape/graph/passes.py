"""Rewrite passes on the graph IR: remove activations, fold BatchNorm, linearize and merge blocks.

Every pass rewrites ``mg.module`` (the fx GraphModule) in place and returns the
refreshed ``ModelGraph``. Merges build the new kernel with ``reshape.graph.conv``,
check it against the subgraph it replaces on random inputs (``verify``), then splice
it in: an exact merge that misses ``EXACT_TOLERANCE`` raises instead of rewriting.

The shallow-block flow is ``linearize`` (drop the block's inner ReLUs and move its
padding onto the first conv: the merge-compatible form, trainable as is) and then
``merge_block`` (one conv with the shortcut folded in, ``exact`` or ``compact``).
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import fx, nn
from torch.utils.flop_counter import conv_flop_count

from .._probe import eval_mode
from ..errors import ReshapeError
from .conv import compact, compose, fold_bn, fold_shortcut, to_padding_exact
from .ir import Block, ModelGraph
from .verify import max_relative_error, require_exact

MODES = ("exact", "compact")
PADDINGS = ("exact", "standard")


@dataclass(frozen=True)
class MergeReport:
    """What one merge did to one block or chain, and how close the result is to what it replaced."""

    name: str
    mode: str
    kernel: int
    stride: int
    padding: int
    relus_before: int
    relus_after: int
    macs_before: int
    macs_after: int
    max_rel_error: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def remove_activation(mg: ModelGraph, node: str) -> ModelGraph:
    """Replace activation ``node`` by the identity (its input flows straight through)."""
    _drop_activation(mg, node)
    return _refresh(mg)


def fold_batchnorms(mg: ModelGraph) -> ModelGraph:
    """Fold every BatchNorm that directly follows a conv used only by it; the model is checked exact."""
    gm = mg.module
    reference = fx.GraphModule(gm, _copy_graph(gm.graph))
    for n in list(gm.graph.nodes):
        prev = n.args[0] if n.args else None
        if (mg.graph.nodes[n.name]["kind"] != "norm" or not isinstance(prev, fx.Node)
                or mg.graph.nodes[prev.name]["kind"] != "conv" or len(prev.users) != 1):
            continue
        gm.set_submodule(prev.target, fold_bn(gm.get_submodule(prev.target), gm.get_submodule(n.target)))
        n.replace_all_uses_with(prev)
        gm.graph.erase_node(n)
    new = _refresh(mg)
    require_exact(max_relative_error(reference, gm, mg.input_shape), "BatchNorm folding")
    return new


def linearize(mg: ModelGraph, blocks: str | Iterable[str], padding: str = "exact") -> ModelGraph:
    """Drop the inner ReLUs of ``blocks``; with ``padding='exact'`` also move their padding to the first conv.

    The padding-exact form is what an exact merge reproduces everywhere, borders
    included; train/fine-tune the linearized model in it. ``standard`` keeps the
    usual padding (a later exact merge then matches only away from the borders).
    """
    if padding not in PADDINGS:
        raise ReshapeError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    for block in _blocks(mg, blocks):
        _require_linearizable(mg, block)
        for name in block.main:
            if mg.graph.nodes[name]["kind"] == "act":
                _drop_activation(mg, name)
        if padding == "exact":
            to_padding_exact([mg.module.get_submodule(mg.graph.nodes[n]["module"])
                              for n in block.main if mg.graph.nodes[n]["kind"] == "conv"])
    return _refresh(mg)


def merge_block(mg: ModelGraph, block: str, mode: str = "exact", k: int = 3,
                inputs: torch.Tensor | None = None) -> tuple[ModelGraph, MergeReport]:
    """Merge one linearized block (residual branch + shortcut) into a single conv."""
    new, reports = merge_blocks(mg, [block], mode, k, {block: inputs} if inputs is not None else None)
    return new, reports[0]


def merge_blocks(mg: ModelGraph, blocks: Iterable[str], mode: str = "exact", k: int = 3,
                 inputs: dict[str, torch.Tensor] | None = None,
                 on_merged: Callable[[MergeReport], None] | None = None, check: bool = True,
                 ) -> tuple[ModelGraph, list[MergeReport]]:
    """Merge several linearized blocks into one conv each; ``inputs`` maps a block to calibration activations.

    All-or-nothing: every block is built and checked first, and the graph is only
    rewritten when all pass (exact mode), so a failure leaves the model as it was.
    ``check=False`` skips the numerical check (``max_rel_error`` is then NaN): only for
    replaying a rewrite that was checked when it was made, on weights about to be replaced.
    """
    if mode not in MODES:
        raise ReshapeError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    built = []
    for block in _blocks(mg, blocks):
        if any(mg.graph.nodes[n]["kind"] == "act" for n in block.main):
            raise ReshapeError(f"block '{block.name}' still has ReLU layers "
                               f"{', '.join(block.inner_relu_layers)}; linearize it first")
        exact = fold_shortcut(_compose_chain(mg, block.main),
                              _compose_chain(mg, block.shortcut) if block.shortcut else None)
        conv = compact(exact, k, (inputs or {}).get(block.name)) if mode == "compact" else exact
        nodes = [*block.main, *block.shortcut, block.add]
        error = (_check(mg, block.fork, nodes, conv, _check_shape(block.in_shape, exact), mode,
                        f"{mode} merge of block '{block.name}'") if check else float("nan"))
        built.append((block, nodes, conv, error))
    for block, nodes, conv, _ in built:
        _replace(mg, block.fork, nodes, conv, f"{block.name}.merged")
    new = _refresh(mg)
    reports = []
    for block, _, conv, error in built:
        merged = _module_node(new, f"{block.name}.merged")
        report = MergeReport(
            name=block.name, mode=mode, kernel=conv.kernel_size[0], stride=conv.stride[0],
            padding=conv.padding[0], relus_before=block.relus,
            relus_after=sum(new.graph.nodes[n]["relus"] for n in block.tail),
            macs_before=block.macs, macs_after=merged["macs"], max_rel_error=error)
        reports.append(report)
        if on_merged:
            on_merged(report)
    return new, reports


def block_inputs(mg: ModelGraph, blocks: Iterable[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The activations entering each of ``blocks`` for a batch ``x``: calibration for a compact merge."""
    forks = {mg.block(b).fork: b for b in blocks}
    captured: dict[str, torch.Tensor] = {}

    class _Capture(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            if n.name in forks:
                captured[forks[n.name]] = out.detach()
            return out

    with torch.no_grad(), eval_mode(mg.module):
        _Capture(mg.module).run(x)
    return captured


def merge_chain(mg: ModelGraph, nodes: Sequence[str], mode: str = "exact",
                k: int = 3) -> tuple[ModelGraph, MergeReport]:
    """Merge consecutive conv/BatchNorm/identity nodes (no nonlinearity between) into one conv."""
    chain = [_fx_node(mg, n) for n in nodes]
    for prev, n in zip(chain, chain[1:]):
        if n.all_input_nodes != [prev] or len(prev.users) != 1:
            raise ReshapeError(f"'{prev.name}' -> '{n.name}' is not a single-path chain; "
                               "only consecutive layers with one input and one user merge")
    if len(chain[0].all_input_nodes) != 1:
        raise ReshapeError(f"'{chain[0].name}' must have exactly one input to start a chain")
    fork = chain[0].all_input_nodes[0].name
    exact = _compose_chain(mg, nodes)
    conv = compact(exact, k) if mode == "compact" else exact
    error = _check(mg, fork, list(nodes), conv, _check_shape(mg.graph.nodes[fork]["shape"], exact), mode,
                   f"{mode} merge of {nodes[0]}..{nodes[-1]}")
    target = f"{chain[-1].target if chain[-1].op == 'call_module' else chain[-1].name}_merged"
    _replace(mg, fork, list(nodes), conv, target)
    new = _refresh(mg)
    return new, MergeReport(target, mode, conv.kernel_size[0], conv.stride[0], conv.padding[0],
                            relus_before=0, relus_after=0,
                            macs_before=sum(mg.graph.nodes[n]["macs"] for n in nodes),
                            macs_after=_module_node(new, target)["macs"], max_rel_error=error)


def predicted_macs(mg: ModelGraph, block: str, mode: str = "exact", k: int = 3) -> int | None:
    """MACs of ``block`` once linearized and merged in ``mode``, known before any rewrite or training.

    None when the block cannot be merged (a layer other than conv, BatchNorm, identity
    or activation on its residual branch). Uses torch's conv FLOP formula.
    """
    b = mg.block(block)
    kinds = {mg.graph.nodes[n]["kind"] for n in (*b.main, *b.shortcut)}
    if not kinds <= {"conv", "norm", "identity", "act"}:
        return None
    kernel = 1
    for n in b.main:
        if mg.graph.nodes[n]["kind"] == "conv":
            conv = mg.module.get_submodule(mg.graph.nodes[n]["module"])
            kernel += (conv.kernel_size[0] - 1) * _stride_before(mg, b, n)
    kernel = k if mode == "compact" else kernel
    c_in, (c_out, *hw) = b.in_shape[0], b.out_shape
    return conv_flop_count([1, c_in, *b.in_shape[1:]], [c_out, c_in, kernel, kernel], [1, c_out, *hw]) // 2


def block_costs(mg: ModelGraph) -> list[dict[str, Any]]:
    """Every block of ``mg`` as a dict, with the MACs it would have once linearized and merged,
    exactly (``macs_exact_merge``) and compactly (``macs_compact_merge``): what a user weighs
    before choosing the blocks to merge (None where a block cannot be merged)."""
    return [{**b.to_dict(), "macs_exact_merge": predicted_macs(mg, b.name, "exact"),
             "macs_compact_merge": predicted_macs(mg, b.name, "compact")} for b in mg.blocks]


def _stride_before(mg: ModelGraph, block: Block, node: str) -> int:
    """Product of the strides of the branch's convs before ``node`` (the dilation its taps get)."""
    stride = 1
    for n in block.main[:block.main.index(node)]:
        if mg.graph.nodes[n]["kind"] == "conv":
            stride *= mg.module.get_submodule(mg.graph.nodes[n]["module"]).stride[0]
    return stride


def _fx_node(mg: ModelGraph, name: str) -> fx.Node:
    for n in mg.module.graph.nodes:
        if n.name == name:
            return n
    raise ReshapeError(f"no node named '{name}' in the graph")


def _module_node(mg: ModelGraph, target: str) -> dict[str, Any]:
    return next(d for _, d in mg.graph.nodes(data=True) if d["module"] == target)


def _blocks(mg: ModelGraph, names: str | Iterable[str]) -> list[Block]:
    return [mg.block(n) for n in ([names] if isinstance(names, str) else names)]


def _require_linearizable(mg: ModelGraph, block: Block) -> None:
    for name in (*block.main, *block.shortcut):
        kind = mg.graph.nodes[name]["kind"]
        if kind not in ("conv", "norm", "identity", "act"):
            raise ReshapeError(f"block '{block.name}' has a '{kind}' node ({name}): only conv, "
                               "BatchNorm, identity and activation layers linearize into a mergeable form")


def _drop_activation(mg: ModelGraph, name: str) -> None:
    node = _fx_node(mg, name)
    if mg.graph.nodes[name]["kind"] != "act" or len(node.all_input_nodes) != 1:
        raise ReshapeError(f"'{name}' is not a one-input activation layer")
    node.replace_all_uses_with(node.all_input_nodes[0])
    mg.module.graph.erase_node(node)


def _compose_chain(mg: ModelGraph, names: Sequence[str]) -> nn.Conv2d:
    """Fold BatchNorms and compose the convs of a linear chain into one conv."""
    convs: list[nn.Conv2d] = []
    last = None
    for name in names:
        data = mg.graph.nodes[name]
        if data["kind"] == "identity":
            continue
        module = mg.module.get_submodule(data["module"]) if data["module"] else None
        if data["kind"] == "conv":
            convs.append(module)
        elif data["kind"] == "norm" and last == "conv":
            convs[-1] = fold_bn(convs[-1], module)
        else:
            raise ReshapeError(f"cannot merge '{name}' ({data['module_type'] or data['kind']}) into a "
                               "convolution: only conv, BatchNorm after a conv, and identity layers compose")
        last = data["kind"]
    if not convs:
        raise ReshapeError(f"nothing to merge in {', '.join(names)}: no convolution")
    return functools.reduce(compose, convs)


def _check(mg: ModelGraph, fork: str, names: list[str], conv: nn.Conv2d, shape: tuple[int, ...],
           mode: str, what: str) -> float:
    """Max relative error of ``conv`` against the subgraph fork -> names[-1] at ``shape``; exact must pass."""
    reference = _subgraph(mg.module, _fx_node(mg, fork), [_fx_node(mg, n) for n in names])
    error = max_relative_error(reference, conv, shape)
    if mode == "exact":
        require_exact(error, what)
    return error


def _replace(mg: ModelGraph, fork: str, names: list[str], conv: nn.Conv2d, target: str) -> None:
    """Splice ``conv`` (fed by ``fork``) in place of the subgraph ``names``."""
    gm = mg.module
    gm.add_submodule(target, conv)
    last = _fx_node(mg, names[-1])
    with gm.graph.inserting_before(last):
        new = gm.graph.call_module(target, (_fx_node(mg, fork),))
    new.meta["nn_module_stack"] = {**last.meta.get("nn_module_stack", {}), target: (target, type(conv))}
    last.replace_all_uses_with(new)
    for node in reversed([n for n in gm.graph.nodes if n.name in names]):
        gm.graph.erase_node(node)


def _subgraph(gm: fx.GraphModule, fork: fx.Node, nodes: list[fx.Node]) -> fx.GraphModule:
    """A runnable module of ``nodes`` (in graph order) fed by ``fork``, sharing ``gm``'s submodules."""
    graph = fx.Graph()
    env = {fork: graph.placeholder("x")}
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for n in sorted(nodes, key=order.__getitem__):
        env[n] = graph.node_copy(n, lambda a: env[a])
    graph.output(env[nodes[-1]])
    return fx.GraphModule(gm, graph)


def _copy_graph(graph: fx.Graph) -> fx.Graph:
    new = fx.Graph()
    out = new.graph_copy(graph, {})
    new.output(out)
    return new


def _check_shape(shape: tuple[int, ...], exact: nn.Conv2d) -> tuple[int, ...]:
    """The input shape, cropped to K + 2s pixels for the exact merged conv (K, stride s).

    Convolution is translation-equivariant: a map where a fully interior output sits
    between border outputs on both sides checks every tap against real data and every
    border case, at a fraction of the full-size cost (ResNet50 layer4: 5x5, not 7x7).
    """
    size = exact.kernel_size[0] + 2 * exact.stride[0]
    return (shape[0], *(min(s, size) for s in shape[1:]))


def _refresh(mg: ModelGraph) -> ModelGraph:
    gm = mg.module
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return ModelGraph.of(gm, mg.input_shape)
