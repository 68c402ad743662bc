"""``reshape graph``: the residual blocks of a model with their ReLUs and MACs."""
from __future__ import annotations

import click

from reshape.report import views

from ._common import POSITIVE, emit, usage_errors, user_errors
from .count import DATASETS


@click.command("graph")
@click.argument("model")
@click.option("--dataset", type=click.Choice(DATASETS),
              help="Input size, channels, classes and stem convention of the dataset (as `reshape count`; "
                   "a CIFAR preset on a timm model the spec cannot express is refused).")
@click.option("--input-size", type=POSITIVE, help="Override the input height/width.")
@click.option("--leaf", "leaves", multiple=True, metavar="MODULE",
              help="Keep this module opaque when tracing (repeatable); for modules torch.fx cannot trace.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with a `blocks` list.")
@user_errors
def command(model: str, dataset: str | None, input_size: int | None, leaves: tuple[str, ...],
            as_json: bool) -> None:
    """Trace MODEL with torch.fx and list its residual blocks.

    A block is the subgraph between a fork and its add (plus its post-add ReLU). For
    each: stride, shortcut (identity or projection), ReLUs, inner ReLUs (those the
    shallow-block method removes), MACs, and the MACs it would have once linearized
    and merged into one conv, exactly or compactly (3x3), known before any training.

    MODEL is a timm model name, a spec JSON file or a run directory (one with a
    graph.json, its rewrite steps, is shown rewritten: linearized and merged blocks).

    \b
    Examples:
      reshape graph resnet18 --dataset cifar100      # 8 BasicBlocks, 491,520 block ReLUs
      reshape graph resnet50 --json                  # 16 Bottlenecks
      reshape graph runs/r18_shallow                 # a run with graph.json rewrite steps
      reshape graph net.json --leaf layer1.0.attn    # keep an untraceable module opaque
    """
    from reshape.graph import block_costs
    from reshape.models import PresetError
    from reshape.runs import trace_model_or_run

    with usage_errors("--dataset", PresetError):
        mg = trace_model_or_run(model, dataset, input_size, leaves)
    blocks = block_costs(mg)
    emit(as_json, {"model": model, "input_shape": list(mg.input_shape), "relus": mg.relus, "macs": mg.macs,
                   "blocks": blocks}, views.graph_view(model, mg, blocks), pipe_width=None)
