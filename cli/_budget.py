"""What ``reshape senet``, ``snl`` and ``sensitivity`` share: options, the teacher run and its data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import click

from reshape.spec import GRANULARITIES

from ._common import Amount


def budget_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """RUN_DIR, --budget, --data, --root and --out: the arguments of every budget method."""
    for decorator in reversed([
        click.argument("run_dir", type=click.Path(file_okay=False)),
        click.option("--budget", type=Amount(), required=True,
                     help="ReLU budget per image: 50k, 1.2M or 50000."),
        click.option("--data", required=True, help="Dataset the teacher was trained on."),
        click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files."),
        click.option("--out", required=True, type=click.Path(file_okay=False), help="Output run directory."),
        click.option("--granularity", type=click.Choice(GRANULARITIES), default="neuron",
                     show_default=True, help="Mask per neuron (C x H x W) or per channel."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]):
        fn = decorator(fn)
    return fn


@dataclass
class TeacherData:
    spec: Any
    model: Any
    train_set: Any
    test_set: Any


def teacher_and_data(run_dir: str, data: str, root: str | None, splits: bool = True,
                     limit: int | None = None, seed: int = 0) -> TeacherData:
    """The teacher of ``run_dir`` checked against dataset ``data``, with its splits loaded
    (the training split cut to ``limit`` images when given)."""
    from reshape.data import splits as load_splits
    from reshape.runs import load_trained
    from reshape.train import load_teacher

    run = load_trained(run_dir, data, root, what=f"teacher {run_dir}")
    model = load_teacher(run, run.spec, data)
    if not splits:
        return TeacherData(run.spec, model, None, None)
    return TeacherData(run.spec, model, *load_splits(data, root, limit, seed))


def final_report(out: str, metrics: dict[str, Any], as_json: bool, extra: dict[str, Any]) -> None:
    from reshape.runs import summarize

    from ._common import echo_json

    relus = summarize(out)["relus"]
    row = {"out": out, "relus": relus, "top1": metrics.get("test_top1"), "top5": metrics.get("test_top5"),
           **extra}
    if as_json:
        echo_json(row)
        return
    top1 = f"{100 * row['top1']:.2f}%" if row["top1"] is not None else "-"
    click.echo(f"{out}: ReLUs {relus:,}  test top-1 {top1}  " +
               "  ".join(f"{k} {v}" for k, v in extra.items()))
