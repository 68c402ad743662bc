"""``reshape frontier``: registered methods at several ReLU budgets from one trained teacher."""
from __future__ import annotations

from typing import Any

import click

from reshape.report import run_views
from reshape.setting import EPOCHS

from ._common import RUN_DIR, Dataset, OutPath, Count, emit, usage_errors, user_errors
from ._training import method_setting, training_options

HELP = """Fit TEACHER_RUN to every budget with every method, once per seed; write the table, CSV and plot.

Training is equal by construction (docs/frontier.md): every student trains --epochs
after its parent on the teacher's images (the teacher must have been trained with the
same --data, --limit and --val), and every row shows its image-passes, parents included.
Pairs of our pipelines and their baselines are printed as paired differences (mean ±
standard error over --seeds) and as the ReLUs ours needs at iso-accuracy. Each point is
a run directory OUT/METHOD/LABEL/seed<S>: a rerun reads finished points back, resumes a
partial one and extends the frontier with more methods, budgets or seeds (--force starts
over). Writes OUT/results.json, results.csv, results.md and frontier.png.

With --storage the points are trials of one Optuna study: run the command once, and the
same command with --worker in any number of processes sharing --out (docs/scaling.md).

\b
Examples:
  reshape train resnet18 --data fashion-mnist-mini --width 8 --epochs 6 --val 500 --out runs/teacher
  reshape frontier runs/teacher --methods snl,hybrenet_snl --budgets 5%,33% --epochs 2 \\
      --val 500 --seeds 0,1,2 --preset short --out runs/frontier
  reshape frontier runs/teacher --methods senet,snl --budgets 2%,10k --epochs 4 --val 500 \\
      --set senet.at_weight=100 --set snl.lam=1e-3 --out runs/frontier
  reshape frontier runs/teacher --methods width,deepreduce --budgets 5%,10%,25% --epochs 2 \\
      --out /shared/frontier --storage postgresql://me@db/optuna            # once
  reshape frontier runs/teacher --methods width,deepreduce --budgets 5%,10%,25% --epochs 2 \\
      --out /shared/frontier --storage postgresql://me@db/optuna --worker   # on every GPU
"""


@click.command("frontier", help=HELP)
@click.argument("teacher_run", type=RUN_DIR)
@click.option("--methods", "methods_text", required=True, help="Comma-separated registered methods (`reshape methods`).")
@click.option("--budgets", required=True, type=Count(fractions=True, many=True),
              help="Comma-separated budgets: 2% (or 0.02) of the teacher's ReLUs, or counts 10k, 5000 "
                   "(1.0 is all of them, 1 is one ReLU).")
@click.option("--data", type=Dataset(), help="Dataset every method trains on (default: the one the teacher records).")
@click.option("--root", type=click.Path(file_okay=False), help="Folder holding the dataset files.")
@click.option("--seeds", "seeds_text", default="0", show_default=True,
              help="Comma-separated seeds, e.g. 0,1,2: every point once per seed (its own teacher, initialisation "
                   "and data order); rows are reported as mean ± standard error.")
@training_options(only=("epochs", "batch_size", "kd_alpha", "device", "limit", "val"), epochs=EPOCHS)
@click.option("--preset", help="A params preset every method that has it starts from, e.g. short (settings for "
                                "runs of a few epochs; `reshape methods` lists each method's presets).")
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
            seeds_text: str, preset: str | None, sets: tuple[str, ...], out: str, force: bool, storage: str | None,
            worker: bool, as_json: bool, **opts: Any) -> None:
    """Parse the options, run the frontier (alone, or sharing --storage with other processes), print it."""
    from reshape.errors import ReshapeError
    from reshape.frontier import frontier_command, run_frontier
    from reshape.report.frontier import describe, write_frontier
    from reshape.runs import RunDir

    if worker and not storage:
        raise click.BadParameter("--worker takes points from a --storage; add --storage URL", param_hint="--worker")
    if worker and force:
        raise click.BadParameter("a worker cannot start a frontier over; drop --force", param_hint="--force")
    methods, params, seeds = _parse(methods_text, preset, sets, seeds_text)
    data = data or RunDir(teacher_run).trained_on()
    if not data:
        raise ReshapeError(f"{teacher_run} does not record its dataset; pass --data NAME")
    setting = method_setting({**opts, "seed": seeds[0]}, data, root)
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    result = run_frontier(teacher_run, methods, budgets, setting, out, params, force=force, seeds=seeds, preset=preset,
                          on_point=None if as_json else lambda row: say(describe(row)), storage=storage, worker=worker,
                          command=frontier_command(teacher_run, methods, budgets, setting, seeds, sets, out, preset),
                          log=say)
    if result is None:
        say("worker done: no point is waiting")
        return
    files = write_frontier(result)
    emit(as_json, result.to_dict(), run_views.frontier_view(result), pipe_width=200)
    if not as_json:
        click.echo(f"wrote {', '.join(str(f) for f in [result.out / 'results.json', *files])}")


def _parse(methods_text: str, preset: str | None, sets: tuple[str, ...],
           seeds_text: str) -> tuple[list[str], dict[str, dict[str, str]], tuple[int, ...]]:
    """The methods, their --set params and the seeds; a wrong value is a usage error of its option."""
    from reshape.frontier import method_params, parse_methods, parse_sets
    from reshape.setting import parse_seeds

    with usage_errors("--methods"):
        methods = parse_methods(methods_text)
    with usage_errors("--preset"):
        method_params(methods, {}, preset)
    with usage_errors("--set"):
        params = parse_sets(sets, methods)
        method_params(methods, params, preset)
    with usage_errors("--seeds"):
        seeds = parse_seeds(seeds_text)
    return methods, params, seeds

