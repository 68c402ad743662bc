"""``reshape frontier``: registered methods at several ReLU budgets from one trained teacher."""
from __future__ import annotations

import re
import shlex
from typing import Any, Sequence

import click

from ._common import POSITIVE, RUN_DIR, Dataset, OutPath, Target, echo_json, user_errors

_SET = re.compile(r"^([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)=(.*)$")


def parse_sets(items: tuple[str, ...], methods: list[str]) -> dict[str, dict[str, str]]:
    """``senet.at_weight=100`` options as ``{"senet": {"at_weight": "100"}}`` (values converted later)."""
    params: dict[str, dict[str, str]] = {}
    for item in items:
        m = _SET.match(item)
        if not m:
            raise click.BadParameter(f"write METHOD.PARAM=VALUE (e.g. senet.at_weight=100), got {item!r}",
                                     param_hint="--set")
        method, name, value = m.groups()
        if method not in methods:
            raise click.BadParameter(f"{item!r} sets a param of '{method}', which is not in --methods "
                                     f"({', '.join(methods)})", param_hint="--set")
        params.setdefault(method, {})[name] = value
    return params


def _methods(text: str) -> list[str]:
    from reshape.methods import list_methods

    names = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in list_methods()]
    if unknown or not names:
        what = f"unknown method '{unknown[0]}'" if unknown else "give at least one method"
        raise click.BadParameter(f"{what}; registered: {', '.join(list_methods())} "
                                 "(`reshape methods` describes them)", param_hint="--methods")
    return names


@click.command("frontier")
@click.argument("teacher_run", type=RUN_DIR)
@click.option("--methods", "methods_text", required=True, help="Comma-separated registered methods (`reshape methods`).")
@click.option("--budgets", required=True, type=Target(many=True),
              help="Comma-separated budgets: 2% (or 0.02) of the teacher's ReLUs, or counts 10k, 5000 "
                   "(1.0 is all of them, 1 is one ReLU).")
@click.option("--data", type=Dataset(), help="Dataset every method trains on (default: the one the teacher records).")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--limit", type=POSITIVE, help="Train on at most this many images (a seeded subset).")
@click.option("--epochs", type=POSITIVE, required=True, help="Student epochs of every method (two-stage methods split them).")
@click.option("--teacher-epochs", type=POSITIVE, default=6, show_default=True,
              help="Epochs of all-ReLU networks a method trains from scratch (HybReNet bases).")
@click.option("--batch-size", type=POSITIVE, default=128, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--set", "sets", multiple=True, metavar="METHOD.PARAM=VALUE",
              help="Override a method's param (repeatable), e.g. senet.at_weight=100.")
@click.option("--out", required=True, type=OutPath(directory=True), help="Frontier folder (one run per point).")
@click.option("--force", is_flag=True, help="Delete the frontier in --out and start over.")
@click.option("--storage", help="Share the points through an Optuna storage (journal:PATH, postgresql://...): "
                                "start this command once and the same command with --worker anywhere.")
@click.option("--worker", is_flag=True, help="With --storage: only take points, then leave (no table).")
@click.option("--json", "as_json", is_flag=True, help="Print results.json instead of the table.")
@user_errors
def command(teacher_run: str, methods_text: str, budgets: list[int | float], data: str | None, root: str | None,
            limit: int | None, epochs: int, teacher_epochs: int, batch_size: int, seed: int, device: str,
            sets: tuple[str, ...], out: str, force: bool, storage: str | None, worker: bool,
            as_json: bool) -> None:
    """Fit TEACHER_RUN to every budget with every method; write the table, CSV and plot.

    Each (method, budget) point is its own run directory OUT/METHOD/LABEL, trained with
    KD from the teacher for --epochs on the same data, so points compare. Finished points
    are read back and a partial one resumes; rerun with more methods or budgets to extend
    a frontier (the same teacher and settings are required; --force starts over).
    Writes OUT/results.json, results.csv, results.md and frontier.png. A budget a method
    cannot reach (e.g. below the width-1 network) is reported as unreachable.

    With --storage the points become trials of one Optuna study there: run this command
    once (it takes points too, waits for the others' and writes the results) and the same
    command with --worker in any number of processes, on machines that share --out. A
    killed worker's point is queued again and resumes from its last checkpoint
    (docs/scaling.md).

    \b
    Examples:
      reshape train resnet18 --data fashion-mnist-mini --width 8 --epochs 6 --out runs/teacher
      reshape frontier runs/teacher --methods width,deepreduce --budgets 5%,10%,25% \\
          --epochs 2 --out runs/frontier
      reshape frontier runs/teacher --methods senet,snl --budgets 2%,10k --epochs 4 \\
          --set senet.at_weight=100 --set snl.lam=1e-3 --out runs/frontier
      reshape frontier runs/teacher --methods width,deepreduce --budgets 5%,10%,25% --epochs 2 \\
          --out /shared/frontier --storage postgresql://me@db/optuna            # once
      reshape frontier runs/teacher --methods width,deepreduce --budgets 5%,10%,25% --epochs 2 \\
          --out /shared/frontier --storage postgresql://me@db/optuna --worker   # on every GPU
    """
    from reshape.errors import ReshapeError
    from reshape.frontier import plan_frontier, run_frontier
    from reshape.methods import Setting, get_method
    from reshape.report.frontier import write_frontier
    from reshape.runs import RunDir

    if worker and not storage:
        raise click.BadParameter("--worker takes points from a --storage; add --storage URL", param_hint="--worker")
    if worker and force:
        raise click.BadParameter("a worker cannot start a frontier over; drop --force", param_hint="--force")
    methods = _methods(methods_text)
    params = parse_sets(sets, methods)
    for name, overrides in params.items():
        try:
            get_method(name).params(**overrides)
        except ReshapeError as exc:
            raise click.BadParameter(str(exc), param_hint="--set") from None
    data = data or RunDir(teacher_run).trained_on()
    if not data:
        raise ReshapeError(f"{teacher_run} does not record its dataset; pass --data NAME")
    setting = Setting(data=data, limit=limit, seed=seed, epochs=epochs, teacher_epochs=teacher_epochs,
                      batch_size=batch_size, root=root, device=device)
    command_line = frontier_command(teacher_run, methods, budgets, data, root, limit, epochs, teacher_epochs,
                                 batch_size, seed, sets, out)
    on_point = None if as_json else _echo_point
    if storage:
        import logging

        import optuna

        from reshape.search import open_storage
        from reshape.search.frontier import shared_frontier

        optuna.logging.set_verbosity(logging.ERROR)  # failures reach the user as one-line errors
        queue = open_storage(storage)  # a bad URL or missing driver stops before the folder is claimed
        plan = plan_frontier(teacher_run, methods, budgets, setting, out, params, force=force)
        result = shared_frontier(plan, queue, worker, on_point, log=lambda line: click.echo(line, err=True),
                                 command=command_line)
        if result is None:
            click.echo("worker done: no point is waiting", err=True)
            return
    else:
        result = run_frontier(teacher_run, methods, budgets, setting, out, params, force=force,
                              on_point=on_point, command=command_line)
    files = write_frontier(result)
    if as_json:
        echo_json(result.to_dict())
        return
    _print_table(result)
    click.echo(f"wrote {', '.join(str(f) for f in [result.out / 'results.json', *files])}")


def _echo_point(row: dict[str, Any]) -> None:
    """One line per point on stderr as it finishes (the progress bar shows the running one)."""
    from reshape.report.frontier import describe

    click.echo(describe(row), err=True)


def _print_table(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from reshape.report.frontier import table

    header, body = table(result)
    view = Table(title=f"Frontier on {result.setting['data']}", title_justify="left")
    for i, col in enumerate(header):
        view.add_column(col, justify="left" if i < 3 else "right")
    for row in body:
        view.add_row(*row)
    console = Console()
    if not console.is_terminal:  # a log or pipe: the whole table, not one squeezed to 80 columns
        console = Console(width=200)
    console.print(view)


def frontier_command(teacher: str, methods: list[str], budgets: Sequence[int | float | str], data: str, root: str | None,
                  limit: int | None, epochs: int, teacher_epochs: int, batch_size: int, seed: int,
                  sets: tuple[str, ...], out: str) -> str:
    """The command that reproduces this frontier, every setting spelled out (for results.json)."""
    args = ["reshape", "frontier", teacher, "--methods", ",".join(methods),
            "--budgets", ",".join(map(budget_text, budgets)), "--data", data, "--epochs", str(epochs),
            "--teacher-epochs", str(teacher_epochs), "--batch-size", str(batch_size),
            "--seed", str(seed)]
    args += ["--root", root] if root else []
    args += ["--limit", str(limit)] if limit else []
    for item in sets:
        args += ["--set", item]
    return shlex.join(args + ["--out", out])


def budget_text(budget: int | float | str) -> str:
    """A parsed budget as ``--budgets`` takes it: a fraction as a percentage, a count as digits
    (text, such as a placeholder in a summary, is kept as written)."""
    return f"{100 * budget:g}%" if isinstance(budget, float) else str(budget)
