"""``reshape demo``: a small accuracy-vs-ReLU frontier on the packaged data, the HybReNet it
chooses exported, and the figure and answer a user comes for.

The demo is the tool's own commands, in-process: ``reshape train`` for the teacher,
``reshape.frontier.run_frontier`` (what ``reshape frontier`` runs) for every method at every
budget, ``reshape synthesize`` for the CIFAR-100 designs beside the published results, and
``reshape.report.export.export`` (``reshape export``) for the chosen network. Each step
resumes or reads back what it finished (the teacher and every frontier point are runs with
manifests; the export records the weights it was made from), so a rerun after completion
trains nothing and a rerun after a kill finishes the job. ``OUT/summary.md`` prints the
command behind every row.
"""
from __future__ import annotations

import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import click

from ._common import OutPath, user_errors

DATA = "fashion-mnist-mini"
BACKBONE = "resnet18"
#: Our pipelines (DeepReShape's HybReNet alone, and as the base SNL and SENet reduce), then
#: the baselines each is paired with (reshape/tables/pairs.json): SENet counts as a baseline
#: here, whatever its registry family, since hybrenet_senet changes its parent alone.
OURS = ("hybrenet", "hybrenet_snl", "hybrenet_senet")
BASELINES = ("snl", "senet", "deepreduce")
METHODS = OURS + BASELINES
#: The budgets as `reshape frontier --budgets` takes them: fractions of the teacher's ReLUs.
#: 33% is where DeepReShape's claim lives (its HybReNets at >= 30% are 5x5x3x networks).
BUDGETS = "5%,33%"
#: Where the published CIFAR-100 results lie (reshape/tables/anchors.csv): the budgets at which
#: the third panel shows the HybReNet `reshape synthesize` makes for CIFAR-100 (spec only).
CIFAR_DATASET = "cifar100"
#: What the demo adds to its export folder: a README and the record that marks it complete.
EXPORT_EXTRAS = ("README.md", "export.json")
CIFAR_BUDGETS = "25k,50k,100k,180k"


@dataclass(frozen=True)
class Mode:
    """How big the demo is: the teacher's training and the frontier's ``Setting``. Every network
    trains on the same ``limit`` images (the teacher too), so the frontier's training is equal."""

    width: int  # the teacher's stage-1 width (resnet18 --width)
    teacher_epochs: int  # the teacher's epochs: also a HybReNet base's, and the head start of a network from scratch
    limit: int | None  # training images of every network (a seeded subset)
    val: int  # validation images carved from the training split before the subset
    epochs: int  # student epochs of every method after its parent (two-stage methods split them)
    batch_size: int


#: full: sized for < 5 min on 2 quiet cores (docs/frontier.md, "The demo"); quick: seconds, for tests.
MODES = {"full": Mode(width=8, teacher_epochs=4, limit=2000, val=500, epochs=2, batch_size=64),
         "quick": Mode(width=4, teacher_epochs=1, limit=256, val=64, epochs=2, batch_size=64)}


#: Every method's ``short`` params preset (the registered defaults are the published ones, which
#: assume 100+ epochs: docs/frontier.md): SNL's short-run schedule and SENet's AT weight 100, for
#: the baselines and for the HybReNet pipelines' own SNL and SENet steps alike. HybReNet bases
#: are uncapped (as published: more MACs than the teacher).
PRESET = "short"
#: SENet ranks the stages as the HybReNet pipelines do (the published 1,4,2,3), so each pair
#: reduces with one recipe and differs in the parent alone.
SETS = ("senet.ranking=1,4,2,3",)


@click.command("demo")
@click.option("--out", default="demo-out", show_default=True, type=OutPath(directory=True),
              help="Folder for the teacher, the frontier, the export, front.png and summary.md.")
@click.option("--quick", is_flag=True,
              help="A seconds-long smoke run (width-4 teacher, 256 images, 1-epoch bases).")
@click.option("--force", is_flag=True,
              help="Delete the demo's teacher, frontier and export in --out and start over (e.g. a full "
                   "demo where a --quick one ran).")
@user_errors
def command(out: str, quick: bool, force: bool) -> None:
    """Train a teacher on the packaged Fashion-MNIST subset, fit it to 5% and 33% of its ReLUs
    with every method under equal training, export the best HybReNet and draw the front it sits on.

    \b
    1. reshape train resnet18 --width 8 --limit 2000 --val 500: the teacher, on the
       2,000 images every network trains on (500 more held out for validation);
    2. the frontier (reshape.frontier.run_frontier, as `reshape frontier`): at 5% and 33%
       of the teacher's ReLUs, the HybReNet `reshape synthesize` makes for the budget
       (hybrenet), a HybReNet base reduced by SNL or SENet (hybrenet_snl,
       hybrenet_senet), and the baselines they are paired with, SNL, SENet and
       DeepReDuce; every network the teacher's training plus 2 student epochs, each row
       with its training (image-passes), exact ReLUs, top-1, MACs and DELPHI latency;
    3. reshape synthesize for CIFAR-100 at 25k-180k ReLUs, beside the published results;
    4. reshape export of the most accurate HybReNet: spec, safetensors, ONNX (checked
       against PyTorch), timm config, in OUT/export/ with a README to rebuild it;
    5. OUT/front.png (three panels) and OUT/summary.md: the best network at each budget,
       each pair (ours - baseline, with its standard error) and the command behind every row.

    Every step resumes: a rerun reads back what is done (seconds after a finished demo)
    and finishes what a kill interrupted. Takes about 3 minutes on 2 CPU cores.

    \b
    Examples:
      reshape demo                      # writes demo-out/
      reshape demo --quick --out /tmp/d # a smoke run
      reshape demo --force              # start demo-out/ over (other settings were run there)
    """
    from rich.console import Console

    from reshape.runs import RunDir, writes

    name = "quick" if quick else "full"
    mode = MODES[name]
    root = Path(out)
    demo_dir = RunDir(root)
    # What --force may delete: the demo's own steps (each owned by its command) and outputs.
    writes("demo", "teacher", "frontier", CIFAR_DATASET, "export", "front.png", "summary.md")
    writes("export", *EXPORT_EXTRAS)
    demo_dir.claim("demo", {"mode": name, **asdict(mode)}, force=force)  # owned: no other demo mixed in
    console = Console(stderr=True)
    start = time.perf_counter()
    teacher, teacher_command = _teacher(root, mode, console, force)
    result, sets = _frontier(root, teacher, mode, console, force)
    designs = _designs(root, console)
    exported = _export(root, result, console, force)
    figure = _figure(root, result, designs, quick)
    seconds = time.perf_counter() - start
    _write_summary(root, result, mode, teacher_command, sets, exported, seconds, quick)
    demo_dir.finish({"summary": str(root / "summary.md"), "figure": str(figure), "export": str(exported["folder"])})
    console.print(f"[bold green]demo done[/] in {seconds:.0f} s: {root / 'summary.md'}, {figure}, "
                  f"{exported['folder']}/")


def _run_command(console: Any, args: Sequence[str]) -> str:
    """Run ``reshape ARGS`` in-process (the same code path as typing it); returns the command line."""
    from reshape.cli import cli
    from reshape.errors import ReshapeError

    line = shlex.join(["reshape", *args])
    console.rule(f"[bold]$ {line}")
    try:
        cli.main(list(args), prog_name="reshape", standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise ReshapeError(f"demo step failed: {line} (exit {exc.code}); if --out holds a demo of other "
                               "settings (--quick), pass --force or pick another --out") from None
    return line


def _teacher(root: Path, mode: Mode, console: Any, force: bool) -> tuple[Path, str]:
    """The teacher, trained by `reshape train` (read back when done, resumed when interrupted)."""
    teacher = root / "teacher"
    line = _run_command(console, ["train", BACKBONE, "--data", DATA, "--width", str(mode.width),
                                  "--epochs", str(mode.teacher_epochs), "--batch-size", str(mode.batch_size),
                                  "--limit", str(mode.limit), "--val", str(mode.val),
                                  "--out", str(teacher), *(["--force"] if force else [])])
    return teacher, line


def _frontier(root: Path, teacher: Path, mode: Mode, console: Any, force: bool) -> tuple[Any, tuple[str, ...]]:
    """Every method at every budget (`reshape frontier`'s library call), then its table, CSV and plot."""
    from reshape.frontier import frontier_command, parse_sets, run_frontier
    from reshape.report.frontier import describe, write_frontier

    from ._common import Target

    sets = SETS
    setting = _setting(mode)
    out = root / "frontier"
    budgets = Target(many=True).convert(BUDGETS, None, None)
    line = frontier_command(teacher, METHODS, budgets, setting, [setting.seed], sets, out, PRESET)
    console.rule(f"[bold]$ {line}")
    result = run_frontier(teacher, METHODS, budgets, setting, out, parse_sets(sets, list(METHODS)),
                          force=force, on_point=lambda row: console.print(describe(row), highlight=False), command=line,
                          preset=PRESET)
    write_frontier(result)
    return result, sets


def _setting(mode: Mode) -> Any:
    from reshape.setting import Setting

    return Setting(data=DATA, limit=mode.limit, val=mode.val, epochs=mode.epochs, batch_size=mode.batch_size)


def _designs(root: Path, console: Any) -> list[Any]:
    """The HybReNets `reshape synthesize --sweep` makes for CIFAR-100 (specs and exact counts, no training)."""
    from reshape.io import read_json
    from reshape.report.plot import Design

    out = root / CIFAR_DATASET
    _run_command(console, ["synthesize", "--backbone", BACKBONE, "--dataset", CIFAR_DATASET,
                           "--sweep", CIFAR_BUDGETS, "--out", str(out)])
    return [Design(r["shape"], r["budget"], r["relus"], r["macs"]) for r in read_json(out / "summary.json", "sweep")]


def _export(root: Path, result: Any, console: Any, force: bool) -> dict[str, Any]:
    """The most accurate HybReNet-family point, exported by `reshape export --onnx --timm-config`;
    read back when ``export.json`` records the same weights."""
    from reshape.errors import ReshapeError
    from reshape.io import read_json, write_json, write_text
    from reshape.report.export import export
    from reshape.runs import RunDir

    from reshape.frontier import budget_text

    candidates = [r for r in result.points
                  if r["method"] in OURS and r["reachable"] and r["top1"] is not None]
    if not candidates:
        raise ReshapeError(f"no HybReNet point reached its budget in {result.out}; nothing to export")
    chosen = max(candidates, key=lambda r: (r["top1"], -r["relus"]))
    folder = root / "export"
    record = folder / EXPORT_EXTRAS[1]
    digest = RunDir(chosen["run"]).weights_digest()
    if record.is_file() and not force:
        saved = read_json(record, "demo export record")
        if isinstance(saved, dict) and saved.get("digest") == digest and saved.get("run") == chosen["run"] \
                and all(Path(f).is_file() for f in saved.get("files", ())):
            console.print(f"export of {chosen['run']} is up to date: {folder}/ (read back)", highlight=False)
            return {**saved, "folder": str(folder)}
    line = shlex.join(["reshape", "export", chosen["run"], "--out", str(folder), "--onnx", "--timm-config"])
    console.rule(f"[bold]$ {line}")
    done = export(chosen["run"], folder, onnx=True, timm_config=True)
    saved = {"run": chosen["run"], "digest": digest, "method": chosen["method"],
             "budget": budget_text(chosen["fraction"]),
             "relus": chosen["relus"], "macs": chosen["macs"], "top1": chosen["top1"],
             "files": list(done.files), "onnx_max_diff": done.onnx_max_diff, "command": line}
    write_text(folder / EXPORT_EXTRAS[0], _export_readme(saved, result))
    write_json(record, saved)  # last: it marks the export complete
    return {**saved, "folder": str(folder)}


def _export_readme(saved: Mapping[str, Any], result: Any) -> str:
    folder = Path(saved["files"][0]).parent
    return "\n".join([
        f"# {saved['method']} at {saved['budget']} of the teacher's ReLUs: {saved['relus']:,} ReLUs, {100 * saved['top1']:.2f}% top-1",
        "", f"The most accurate HybReNet of the demo's frontier ({result.out}), exported from `{saved['run']}`.", "",
        "| file | what |", "|---|---|",
        "| spec.json | the architecture (reshape's versioned spec) |",
        "| model.safetensors | weights and ReLU masks |",
        f"| model.onnx | opset 17, dynamic batch; max abs(onnxruntime - PyTorch) = {saved['onnx_max_diff']:.3g} |",
        "| config.json | timm's pretrained-config layout, with the spec |", "",
        "Load it with timm:", "", "```python",
        "import reshape.models, timm, safetensors.torch  # reshape.models registers 'reshape_spec'",
        f'model = timm.create_model("reshape_spec", spec="{folder}/spec.json")',
        f'model.load_state_dict(safetensors.torch.load_file("{folder}/model.safetensors"))', "```", "",
        "Rebuild it: the frontier command (a finished point is read back; a new --out trains it again),",
        "then the export:", "", "```console", f"$ {result.command}", f"$ {saved['command']}", "```", ""])


def _figure(root: Path, result: Any, designs: Sequence[Any], quick: bool) -> Path:
    """OUT/front.png: the frontier's two panels and the published CIFAR-100 panel."""
    from reshape.report.anchors import load_anchors
    from reshape.report.plot import Published, plot_frontier

    m = result.machine
    footer = (f"reshape demo{' --quick' if quick else ''}, commit {m['commit']}, {m['date']}, "
              f"{m['cores']} cores ({m['cpu']}), {m['gpu'] or 'no GPU'}, torch {m['torch']}, "
              f"{m['threads']} threads.")
    points = [r for r in result.summary if r["reachable"] and r["top1"] is not None]
    teacher = result.teacher
    setting = result.setting
    title = (f"{DATA}: ResNet18 teacher ({teacher['relus']:,} ReLUs) fitted to {BUDGETS.replace(',', ' and ')} of its "
             f"ReLUs; every network trained on the same {_images(setting['limit'])} images, equal image-passes")
    return plot_frontier(points, teacher, title, root / "front.png",
                         published=Published(CIFAR_DATASET, load_anchors(CIFAR_DATASET), designs), footer=footer,
                         baselines=BASELINES)


def _write_summary(root: Path, result: Any, mode: Mode, teacher_command: str, sets: Sequence[str],
                   exported: Mapping[str, Any], seconds: float, quick: bool) -> None:
    """summary.md: the answer first (best network per budget, the paired comparisons with their
    noise, the training every row received), then how to build it for another budget, the
    whole table, and the command behind every row."""
    from reshape.compare import passes_text
    from reshape.frontier import budget_text, frontier_command
    from reshape.io import write_text
    from reshape.report.frontier import best_per_budget, compute_note, markdown_table, pairs_table, percent, table

    teacher = result.teacher
    setting = _setting(mode)
    passes = teacher["image_passes"]
    lines = [f"# reshape demo{' (quick)' if quick else ''}: the best network for a ReLU budget", "",
             f"Teacher: ResNet18 at width {mode.width} on {DATA} (packaged real Fashion-MNIST), "
             f"{teacher['relus']:,} ReLUs, {percent(teacher['top1'])} top-1, trained {mode.teacher_epochs} epochs on "
             f"{_images(mode.limit)} images ({mode.val:,} more held out for validation). Every method fits it to each "
             f"budget; every network's training is the teacher's plus {mode.epochs} student epochs on the same "
             f"images (a network trained from scratch gets {mode.teacher_epochs + mode.epochs} epochs; a HybReNet "
             f"base is trained as the teacher was). Accuracy on {result.tests:,} test images; "
             f"one seed, so each difference's standard error is the binomial one of the test images.", "",
             compute_note(result), "", "## Answer", ""]
    for best, runner in best_per_budget(result):
        head = (f"- At **{budget_text(best['fraction'])} of the teacher's ReLUs ({best['budget']:,})**: "
                f"**{best['method']}** ({_role(best)}), {percent(best['top1'])} with {best['relus']:,} ReLUs")
        lines.append(head + (", the only method that reached this budget." if runner is None else
                             f"; next {runner['method']} ({_role(runner)}, {percent(runner['top1'])})."))
    header, body = pairs_table(result)
    lines += ["", "Each of our pipelines against the baseline it changes one thing of (same seed, same images; a "
                  "win needs more than 2 standard errors):", "", markdown_table(header, body), ""]
    if passes:
        lines += [f"Training per row: {passes_text(passes)} image-passes for the teacher; every point's, parents "
                  "included, is in the table's `training` column.", ""]
    lines += [f"Exported: {exported['method']} at {exported['budget']} ({exported['relus']:,} ReLUs, "
              f"{percent(exported['top1'])}), the most accurate HybReNet, in [export/](export/) (spec, "
              f"safetensors, ONNX checked to {exported['onnx_max_diff']:.2g}, timm config; README.md there "
              "says how to load and rebuild it). Figure: [front.png](front.png).", "",
              "## Build it for your own budget", "",
              "The HybReNet for N ReLUs of this teacher's backbone (spec only, instant), then trained the "
              "way the demo trained its points:", "", "```console",
              f"$ reshape synthesize --backbone {BACKBONE} --width {mode.width} --dataset {DATA} --relus N "
              "--criticality 1,4,2,3 --out my-hrn.json",
              "$ " + frontier_command(teacher["run"], [exported["method"]], ["N"], setting, [setting.seed],
                                      _sets_for(sets, [exported["method"]]), "my-frontier", PRESET),
              "```", "", "## All points", ""]
    header, body = table(result)
    header[1] = "role"  # ours or baseline in this comparison, not the registry's family
    body = [[row[0], "teacher" if row[0] == "teacher" else _role({"method": row[0]}), *row[2:]] for row in body]
    lines += [markdown_table(header, body), "", "## Commands", "",
              "Each row, alone (the demo's folder reads it back; another --out trains it again):", "",
              "```console", f"$ {teacher_command}"]
    for row in result.summary:
        lines.append("$ " + frontier_command(teacher["run"], [row["method"]], [row["fraction"]], setting,
                                             [setting.seed], _sets_for(sets, [row["method"]]), result.out, PRESET))
    lines += [f"$ {result.command}", f"$ {exported['command']}", "```", "",
              f"Machine: {result.machine['cores']} cores, {result.machine['cpu']}, torch {result.machine['torch']}, "
              f"commit {result.machine['commit']}, {result.machine['date']}. This call: {seconds:.0f} s.", ""]
    write_text(root / "summary.md", "\n".join(lines))


def _role(row: Mapping[str, Any]) -> str:
    return "ours" if row["method"] in OURS else "baseline"


def _sets_for(sets: Sequence[str], methods: Sequence[str]) -> tuple[str, ...]:
    """The `--set` options that concern ``methods`` (`reshape frontier` refuses the others)."""
    return tuple(s for s in sets if s.split(".", 1)[0] in methods)


def _images(limit: int | None) -> str:
    return "all" if limit is None else f"{limit:,}"
