"""``reshape count``: exact ReLU/MAC accounting and PI cost of one model."""
from __future__ import annotations

import click

from ._common import POSITIVE, cli_message, cost_table, echo_json, human, stdout_console, user_errors

from reshape.tables import load as _load_table

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
    from reshape.accounting import count
    from reshape.cost import estimate
    from reshape.errors import ReshapeError

    table = cost_table(protocol, costs)  # a wrong --protocol is exit 2 before any work
    resolved = resolve_model(model, dataset, input_size)
    result = count(resolved.model, resolved.input_shape, convention)
    if result.unsupported_ops:
        ops = ", ".join(f"{op} x{n}" for op, n in result.unsupported_ops.items())
        message = (f"{resolved.label} runs operators on its input that the accounting does not know "
                   f"({ops}); they are counted as 0 (docs/accounting.md)")
        if strict:
            raise ReshapeError(message)
        click.echo(f"warning: {message}", err=True)
    if result.smooth:
        click.echo(f"warning: {resolved.label} runs smooth nonlinearities ({_ops(result.smooth_ops)}); they are "
                   f"not ReLUs and cost more than a comparison in every 2PC protocol: compare it with "
                   f"ReLU networks by these counts, not by ReLUs alone (docs/accounting.md)", err=True)
    total = estimate(result.relus, result.macs, result.nonlinear_depth, protocol, table, result.smooth_ops)
    snl = _snl_convention(resolved.spec)
    if as_json:
        echo_json({
            "model": resolved.label,
            **result.to_dict(),
            **snl,
            "cost": total.to_dict(),
            "spec": resolved.spec.to_dict() if resolved.spec else None,
        })
        return
    _print_tables(resolved.label, result, total, protocol, table, per_layer, snl)


def resolve_model(model: str, dataset: str | None, input_size: int | None):
    """``reshape.runs.resolve`` for shape-only work; a preset the model cannot take is a usage
    error (exit 2) naming --dataset."""
    from reshape.models import PresetError
    from reshape.runs import resolve

    try:
        return resolve(model, dataset, input_size, weights=False)
    except PresetError as exc:
        raise click.BadParameter(cli_message(exc), param_hint="--dataset") from None


def _snl_convention(spec) -> dict:
    """SNL's published counts leave out the one ReLU layer its networks lack (the stem ReLU of
    a ResNet, the final ReLU of a WRN); known for spec-built models only."""
    from reshape.analytic import relus_snl, snl_omitted

    if spec is None:
        return {"relus_snl": None, "snl_omits": None}
    return {"relus_snl": relus_snl(spec), "snl_omits": snl_omitted(spec)}


def _ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} {n:,}" for op, n in ops.items())


def _print_tables(label, result, total, protocol, table, per_layer, snl) -> None:
    from rich.table import Table

    from reshape.cost import estimate

    console = stdout_console()
    # the classes this network has: ReLUs always, the others where non-zero
    classes = [("ReLUs", "relus"), *((name, attr) for name, attr in (("comparisons", "comparisons"),
                                                                    ("smooth", "smooth"))
                                     if getattr(result, attr))]
    t = Table(title=f"{label}  input {'x'.join(map(str, result.input_shape))}  convention {result.convention}",
              title_justify="left")
    for col in ("stage", *(name for name, _ in classes), "% ReLUs", "MACs", "% MACs", "params",
                f"{protocol} online", f"{protocol} comm"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for s in result.stages:
        t.add_row(s.name, *(f"{getattr(s, attr):,}" for _, attr in classes), _pct(s.relus, result.relus),
                  human(s.macs), _pct(s.macs, result.macs), human(s.params),
                  *_cost_cells(estimate(s.relus, s.macs, 0, protocol, table, s.smooth_ops, network=False)))
    t.add_row("total", *(f"{getattr(result, attr):,}" for _, attr in classes), "100%", human(result.macs), "100%",
              human(result.params), *_cost_cells(total), style="bold")
    console.print(t)
    others = "".join(f"{name} {getattr(result, attr):,}  " for name, attr in classes[1:])
    console.print(f"ReLUs {result.relus:,} ({_stem_note(result)})  {others}MACs {result.macs:,}  "
                  f"params {result.params:,}  nonlinear depth {result.nonlinear_depth}  "
                  f"(convention {result.convention})", highlight=False)
    if result.smooth_ops:
        console.print(f"smooth by op: {_ops(result.smooth_ops)}", highlight=False)
    if snl["relus_snl"] is not None:
        console.print(f"SNL's convention: {snl['relus_snl']:,} ReLUs (its networks have no "
                      f"{snl['snl_omits']} layer)")
    if total.unpriced:
        console.print(f"{protocol} estimate: none: the {protocol} profile has no cost for "
                      f"{', '.join(total.unpriced)} (docs/accounting.md; give one with --costs)", highlight=False)
    else:
        console.print(
            f"{protocol} estimate: online {total.online_s:.2f}s, offline {total.offline_s:.2f}s, "
            f"communication {human(total.online_bytes)}B online + {human(total.offline_bytes)}B offline"
        )
    if per_layer:
        lt = Table(title=f"layers  convention {result.convention}", title_justify="left")
        for col in ("layer", "stage", "kind", "output", "ReLUs", "comparisons", "smooth", "MACs"):
            lt.add_column(col, justify="left" if col in ("layer", "stage", "kind") else "right")
        for layer in result.layers:
            lt.add_row(layer.name or "(model forward)", layer.stage, layer.kind, "x".join(map(str, layer.shape)),
                       f"{layer.relus:,}", f"{layer.comparisons:,}", f"{layer.smooth:,}", f"{layer.macs:,}")
        console.print(lt)


def _stem_note(result) -> str:
    """What the headline ReLU count holds at the stem (SNL's convention is its own line)."""
    if result.stem_relus is None:
        return f"no stem split: {result.stage_split_reason}"
    if result.stem_relus == 0:
        return "the stem has no ReLU"
    return f"stem ReLU included; {result.relus_without_stem:,} without it"


def _cost_cells(c) -> tuple[str, str]:
    if c.unpriced:
        return "no estimate", "no estimate"
    return f"{c.online_s:.2f}s", human(c.total_bytes) + "B"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"
