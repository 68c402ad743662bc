"""``reshape count``: exact ReLU/MAC accounting and PI cost of one model."""
from __future__ import annotations

import click

from reshape.report import views
from reshape.tables import load as _load_table

from ._common import POSITIVE, cost_table, emit, usage_errors, user_errors

#: Presets whose geometry is fixed (an imagefolder's class count needs its files).
DATASETS = [name for name, p in _load_table("datasets").items() if p["num_classes"] is not None]
CONVENTIONS = list(_load_table("conventions"))


@click.command("count")
@click.argument("model")
@click.option("--dataset", type=click.Choice(DATASETS),
              help="Set input size, channels, classes and the stem convention of the published "
                   "work (cifar*/tinyimagenet/mnist: 3x3 stride-1 stem, no max-pool; imagenet: timm's) "
                   "for plain ResNets and our families; a spec file keeps its stem; other timm models "
                   "(seresnet18, resnet50d, ...) take only imagenet (a CIFAR preset is refused, exit 2).")
@click.option("--input-size", type=POSITIVE, help="Override the input height/width.")
@click.option("--per-layer", is_flag=True, help="Also list every ReLU, max-pool and linear layer.")
@click.option("--protocol", default="delphi", show_default=True, help="PI protocol of the cost estimate.")
@click.option("--costs", type=click.Path(exists=True, dir_okay=False), help="JSON file overriding cost constants.")
@click.option("--convention", type=click.Choice(CONVENTIONS), default=CONVENTIONS[0], show_default=True,
              help="Counting convention (docs/accounting.md): crypten charges a two-sided clamp (ReLU6, "
                   "hardtanh) two comparisons, relu-only one. Smooth ops are never ReLUs in either.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--strict", is_flag=True,
              help="Fail (exit 1) when the model runs operators the accounting does not know, "
                   "instead of warning; see unsupported_ops in docs/accounting.md.")
@user_errors
def command(model: str, dataset: str | None, input_size: int | None, per_layer: bool,
            protocol: str, costs: str | None, convention: str, as_json: bool, strict: bool) -> None:
    """Count ReLUs, other comparisons, smooth nonlinearities, MACs, params and nonlinear depth of MODEL.

    MODEL is a timm model name (resnet18, resnet50, resnet18_cifar, ...), a spec JSON
    file, or a run directory. Counts are per input image, computed on the meta device.
    Smooth nonlinearities (GELU, SiLU, sigmoid, softmax, LayerNorm's rsqrt) are counted
    apart from ReLUs, by op, and priced only where the protocol has a cost for them.

    \b
    Examples:
      reshape count resnet18 --dataset cifar100      # 557,056 ReLUs
      reshape count wrn22_8 --dataset cifar100       # 1,392,640 (SNL's convention 1,359,872)
      reshape count resnet50 --dataset imagenet --json
      reshape count spec.json --per-layer
      reshape count seresnet18 --input-size 32 --strict   # exit 1: SE gates multiply two activations
      reshape count vit_tiny_patch16_224 --dataset imagenet   # 0 ReLUs; GELUs and softmaxes listed
    """
    from reshape.accounting import count, price
    from reshape.errors import ReshapeError
    from reshape.models import PresetError
    from reshape.runs import resolve_model_or_run

    table = cost_table(protocol, costs)  # a wrong --protocol is exit 2 before any work
    with usage_errors("--dataset", PresetError):
        resolved = resolve_model_or_run(model, dataset, input_size, weights=False)
    result = price(count(resolved.model, resolved.input_shape, convention), protocol, table, resolved.spec)
    unknown, smooth = result.notes(resolved.label)
    if unknown and strict:
        raise ReshapeError(unknown)
    for note in filter(None, (unknown, smooth)):
        click.echo(f"warning: {note}", err=True)
    emit(as_json, {"model": resolved.label, **result.to_dict(), "spec": resolved.spec and resolved.spec.to_dict()},
         views.count_view(resolved.label, result, protocol, per_layer, costs_option="--costs"))

