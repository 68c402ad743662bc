"""``reshape demo``: the main job on the packaged data, as the commands a user would type.

Every step is a real ``reshape`` command run in-process, printed before it runs and
listed in ``OUT/summary.md`` so each result can be reproduced by hand. Steps whose
output already exists are resumed or skipped by the commands themselves, so an
interrupted demo continues where it stopped.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ._common import OutPath, user_errors

DATA = "fashion-mnist-mini"
#: (teacher epochs, method epochs per stage, teacher width, training images) per mode.
MODES = {"full": (6, 2, 16, None), "quick": (1, 1, 4, 256)}


@click.command("demo")
@click.option("--out", default="demo-out", show_default=True, type=OutPath(directory=True),
              help="Folder for the runs, specs, plot and summary.md.")
@click.option("--quick", is_flag=True, help="A seconds-long smoke run (tiny network, 256 images).")
@user_errors
def command(out: str, quick: bool) -> None:
    """Run the whole pipeline on the packaged Fashion-MNIST subset and summarize it.

    \b
    1. count ResNet18 in the CIFAR convention (557,056 ReLUs) with its PI cost;
    2. synthesize HybReNet specs for CIFAR-100 at 50k, 100k and 180k ReLUs;
    3. train a narrow ResNet18 teacher on fashion-mnist-mini;
    4. fit it to 10% of its ReLUs with SENet and with SNL;
    5. a shallow-block pass (exact merges) keeping 70% of its ReLUs;
    6. plot accuracy against ReLUs (OUT/front.png) and write OUT/summary.md.

    Takes a few minutes on 2 CPU cores; rerun to resume after an interruption.
    """
    from rich.console import Console

    from reshape.errors import ReshapeError
    from reshape.runs import summarize

    teacher_epochs, epochs, width, limit = MODES["quick" if quick else "full"]
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    fast = ["--epochs", str(epochs)] + (["--limit", str(limit)] if limit else [])
    teacher = str(root / "teacher")

    def step(*args: str) -> None:
        console.rule(f"[bold]$ reshape {' '.join(args)}")
        from reshape.cli import cli

        try:
            cli.main(list(args), prog_name="reshape", standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise ReshapeError(f"demo step failed: reshape {' '.join(args)} (exit {exc.code})") from None
        commands.append("reshape " + " ".join(args))

    commands: list[str] = []
    start = time.perf_counter()
    step("count", "resnet18", "--dataset", "cifar100")
    step("synthesize", "--backbone", "resnet18", "--dataset", "cifar100",
         "--sweep", "50k,100k,180k", "--out", str(root / "specs"))
    step("train", "resnet18", "--data", DATA, "--width", str(width), "--epochs", str(teacher_epochs),
         *(["--limit", str(limit)] if limit else []), "--out", teacher)
    budget = summarize(teacher)["relus"] // 10
    runs = {"teacher": teacher}
    # short-run settings: the published lambda and AT weight assume 100+ epochs (docs/senet.md)
    short = {"senet": ["--at-weight", "100"], "snl": ["--lambda", "1e-3"]}
    for method, extra in short.items():
        runs[method] = str(root / method)
        step(method, teacher, "--budget", str(budget), "--data", DATA, *fast, *extra, "--out", runs[method])
    runs["shallow"] = str(root / "shallow")
    step("shallow", teacher, "--relus", "0.7", "--mode", "exact", "--data", DATA, *fast,
         "--out", runs["shallow"])
    step("pareto", *runs.values(), "--dataset", DATA, "--out", str(root / "front.png"))
    rows = [(name, summarize(run)) for name, run in runs.items()]
    _write_summary(root, rows, commands, time.perf_counter() - start, quick)
    console.print(f"[bold green]demo done[/] in {time.perf_counter() - start:.0f} s: "
                  f"{root / 'summary.md'}, {root / 'front.png'}")


def _write_summary(root: Path, rows: list[tuple[str, dict[str, Any]]], commands: list[str],
                   seconds: float, quick: bool) -> None:
    """summary.md: each run as ``reshape.runs.summarize`` reads it (method from its run.json)."""
    from reshape.io import write_text

    lines = [f"# reshape demo{' (quick)' if quick else ''}", "",
             f"Data: {DATA} (packaged real Fashion-MNIST subset). Wall time {seconds:.0f} s.", "",
             "| run | method | ReLUs | MACs | test top-1 |", "|---|---|---:|---:|---:|"]
    lines += [f"| {name} | {s['label']} | {s['relus']:,} | {s['macs']:,} | {_percent(s['top1'])} |"
              for name, s in rows]
    lines += ["", "Accuracy against ReLUs: [front.png](front.png). Synthesized HybReNet specs: specs/.",
              "", "## Commands", "", "```console", *[f"$ {c}" for c in commands], "```", ""]
    write_text(root / "summary.md", "\n".join(lines))


def _percent(top1: float | None) -> str:
    return "-" if top1 is None else f"{100 * top1:.2f}%"
