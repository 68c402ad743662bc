"""The demo (``reshape demo``): a small accuracy-vs-ReLU frontier on the packaged data, the
HybReNet it chooses exported, and the figure and answer a user comes for.

``run_demo(out)`` makes the library calls behind the commands it names: ``train_model`` for
the teacher (``reshape train``), ``run_frontier`` for every method at every budget
(``reshape frontier``), ``reshape.synthesis.sweep`` for the CIFAR-100 designs beside the
published results (``reshape synthesize --sweep``) and ``reshape.report.export.export`` for
the chosen network (``reshape export``). Each step resumes or reads back what it finished
(the teacher and every frontier point are runs with manifests; the export records the
weights it was made from), so a rerun after completion trains nothing and a rerun after a
kill finishes the job. ``OUT/summary.md`` gives the command behind every row.
"""
from __future__ import annotations

import os
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .compare import passes_text
from .errors import ReshapeError
from .frontier import FrontierResult, budget_text, frontier_command, parse_sets, run_frontier
from .io import read_json, write_json, write_text
from .methods import Setting, setting_config
from .report.anchors import load_anchors
from .report.export import export
from .report.frontier import (best_per_budget, compute_note, describe, markdown_table, pairs_table, percent, table,
                              write_frontier)
from .report.plot import Design, Published, plot_frontier
from .runs import RunDir, writes
from .synthesis import Sweep, sweep
from .train import train_model

DATA = "fashion-mnist-mini"
BACKBONE = "resnet18"
#: Our HybReNet pipelines (DeepReShape's HybReNet alone, and as the base SNL and SENet reduce),
#: the most accurate of which is exported, then the methods they are paired with
#: (reshape/tables/pairs.json). Each is named by its registry family in the table and figure.
HYBRENETS = ("hybrenet", "hybrenet_snl", "hybrenet_senet")
METHODS = HYBRENETS + ("snl", "senet", "deepreduce")
#: Fractions of the teacher's ReLUs. 33% is where DeepReShape's claim lives (its HybReNets at
#: >= 30% are 5x5x3x networks).
BUDGETS = (0.05, 0.33)
#: Where the published CIFAR-100 results lie (reshape/tables/anchors.csv): the budgets at which
#: the third panel shows the HybReNet synthesis makes for CIFAR-100 (spec only).
CIFAR_DATASET = "cifar100"
CIFAR_BUDGETS = (25_000, 50_000, 100_000, 180_000)
#: The teacher's learning rate: `reshape train`'s default.
TEACHER_LR = 0.1
#: What the demo adds to its export folder: a README and the record that marks it complete.
README_FILE, RECORD_FILE = "README.md", "export.json"
SUMMARY_FILE, FIGURE_FILE = "summary.md", "front.png"
#: What a forced demo may delete: its own steps (each owned by its command) and outputs.
writes("demo", "teacher", "frontier", CIFAR_DATASET, "export", FIGURE_FILE, SUMMARY_FILE)
writes("export", README_FILE, RECORD_FILE)
#: Every method's ``short`` params preset (the registered defaults are the published ones, which
#: assume 100+ epochs: docs/frontier.md): SNL's short-run schedule and SENet's AT weight 100, for
#: the baselines and for the HybReNet pipelines' own SNL and SENet steps alike. HybReNet bases
#: are uncapped (as published: more MACs than the teacher).
PRESET = "short"
#: SENet ranks the stages as the HybReNet pipelines do (the published 1,4,2,3), so each pair
#: reduces with one recipe and differs in the parent alone.
SETS = ("senet.ranking=1,4,2,3",)


@dataclass(frozen=True)
class Mode:
    """How big the demo is: the teacher's training and the frontier's ``Setting``. Every network
    trains on the same ``limit`` images (the teacher too), so the frontier's training is equal."""

    width: int  # the teacher's stage-1 width (resnet18 --width)
    teacher_epochs: int  # the teacher's epochs: also a HybReNet base's, and the head start of a network from scratch
    limit: int  # training images of every network (a seeded subset)
    val: int  # validation images carved from the training split before the subset
    epochs: int  # student epochs of every method after its parent (two-stage methods split them)
    batch_size: int

    @property
    def setting(self) -> Setting:
        """The frontier's setting; the teacher trains under it too (its data, batch and seed)."""
        return Setting(data=DATA, limit=self.limit, val=self.val, epochs=self.epochs, batch_size=self.batch_size)


#: full: sized for < 5 min on 2 quiet cores (docs/frontier.md, "The demo"); quick: seconds, for tests.
MODES = {"full": Mode(width=8, teacher_epochs=4, limit=2000, val=500, epochs=2, batch_size=64),
         "quick": Mode(width=4, teacher_epochs=1, limit=256, val=64, epochs=2, batch_size=64)}


@dataclass(frozen=True)
class DemoResult:
    """What a demo left in its folder, and how long this call took."""

    out: Path
    summary: Path
    figure: Path
    export: Path
    frontier: FrontierResult
    designs: Sweep
    seconds: float


def run_demo(out: str | os.PathLike[str], quick: bool = False, force: bool = False,
             say: Callable[[str], None] = print) -> DemoResult:
    """Run the demo into ``out`` (``quick``: the seconds-long form the tests run), resuming or
    reading back every finished step; ``say`` gets one line per step and point. A folder
    holding a demo of other settings is refused, naming what differs, unless ``force``, which
    deletes the demo's steps there first."""
    name = "quick" if quick else "full"
    mode = MODES[name]
    root = Path(out)
    folder = RunDir(root)
    folder.claim("demo", {"mode": name, **asdict(mode)}, force=force)  # owned: no other demo mixed in
    start = time.perf_counter()
    teacher_command = _teacher(root / "teacher", mode, force, say)
    result = _frontier(root / "frontier", root / "teacher", mode.setting, force, say)
    say(f"$ reshape synthesize --backbone {BACKBONE} --dataset {CIFAR_DATASET} --sweep "
        f"{','.join(map(str, CIFAR_BUDGETS))} --out {root / CIFAR_DATASET}")
    designs = sweep(root / CIFAR_DATASET, BACKBONE, CIFAR_DATASET, CIFAR_BUDGETS)
    exported = _export(root / "export", result, force, say)
    figure = _figure(root / FIGURE_FILE, result, designs, quick)
    seconds = time.perf_counter() - start
    summary = root / SUMMARY_FILE
    write_text(summary, summary_text(result, mode, teacher_command, exported, seconds, quick))
    folder.finish({"summary": str(summary), "figure": str(figure), "export": str(root / "export")})
    return DemoResult(root, summary, figure, root / "export", result, designs, seconds)


def _teacher(out: Path, mode: Mode, force: bool, say: Callable[[str], None]) -> str:
    """The teacher (read back when done, resumed when interrupted); returns its `reshape train` line."""
    line = shlex.join(["reshape", "train", BACKBONE, "--data", DATA, "--width", str(mode.width),
                       "--epochs", str(mode.teacher_epochs), "--batch-size", str(mode.batch_size),
                       "--limit", str(mode.limit), "--val", str(mode.val), "--out", str(out)])
    say(f"$ {line}")
    setting = mode.setting
    done = train_model(BACKBONE, DATA, out, setting_config(setting, mode.teacher_epochs, TEACHER_LR),
                       limit=setting.limit, val=setting.val, width=mode.width, force=force)
    say(f"teacher: {percent(done.top1)} test top-1" + (" (read back)" if done.cached else ""))
    return line


def _frontier(out: Path, teacher: Path, setting: Setting, force: bool, say: Callable[[str], None]) -> FrontierResult:
    """Every method at every budget (`reshape frontier`'s library call), then its table, CSV and plot."""
    line = frontier_command(teacher, METHODS, BUDGETS, setting, [setting.seed], SETS, out, PRESET)
    say(f"$ {line}")
    result = run_frontier(teacher, METHODS, BUDGETS, setting, out, parse_sets(SETS, METHODS), force=force,
                          on_point=lambda row: say(describe(row)), command=line, preset=PRESET)
    write_frontier(result)
    return result


def _export(folder: Path, result: FrontierResult, force: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """The most accurate HybReNet point, exported as `reshape export --onnx --timm-config` does;
    read back when ``export.json`` records the same weights."""
    candidates = [r for r in result.points if r["method"] in HYBRENETS and r["reachable"] and r["top1"] is not None]
    if not candidates:
        raise ReshapeError(f"no HybReNet point reached its budget in {result.out}; nothing to export")
    chosen = max(candidates, key=lambda r: (r["top1"], -r["relus"]))
    record = folder / RECORD_FILE
    digest = RunDir(chosen["run"]).weights_digest()
    if record.is_file() and not force:
        saved = read_json(record, "demo export record")
        if isinstance(saved, dict) and saved.get("digest") == digest and saved.get("run") == chosen["run"] \
                and all(Path(f).is_file() for f in saved.get("files", ())):
            say(f"export of {chosen['run']} is up to date: {folder}/ (read back)")
            return saved
    line = shlex.join(["reshape", "export", chosen["run"], "--out", str(folder), "--onnx", "--timm-config"])
    say(f"$ {line}")
    done = export(chosen["run"], folder, onnx=True, timm_config=True)
    saved = {"run": chosen["run"], "digest": digest, "method": chosen["method"],
             "budget": budget_text(chosen["fraction"]), "relus": chosen["relus"], "macs": chosen["macs"],
             "top1": chosen["top1"], "files": list(done.files), "onnx_max_diff": done.onnx_max_diff, "command": line}
    write_text(folder / README_FILE, export_readme(saved, result))
    write_json(record, saved)  # last: it marks the export complete
    return saved


def export_readme(saved: Mapping[str, Any], result: FrontierResult) -> str:
    """The export folder's README: what each file is, how to load it, how to rebuild it."""
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


def _figure(out: Path, result: FrontierResult, designs: Sweep, quick: bool) -> Path:
    """front.png: the frontier's two panels and the published CIFAR-100 panel with our designs."""
    m = result.machine
    footer = (f"reshape demo{' --quick' if quick else ''}, commit {m['commit']}, {m['date']}, "
              f"{m['cores']} cores ({m['cpu']}), {m['gpu'] or 'no GPU'}, torch {m['torch']}, "
              f"{m['threads']} threads.")
    points = [r for r in result.summary if r["reachable"] and r["top1"] is not None]
    teacher = result.teacher
    title = (f"{DATA}: ResNet18 teacher ({teacher['relus']:,} ReLUs) fitted to "
             f"{' and '.join(map(budget_text, BUDGETS))} of its ReLUs; every network trained on the same "
             f"{_images(result.setting['limit'])} images, equal image-passes")
    drawn = [Design(d.spec.name, d.budget, d.count.relus, d.count.macs) for d in designs.designs]
    return plot_frontier(points, teacher, title, out, footer=footer,
                         published=Published(CIFAR_DATASET, load_anchors(CIFAR_DATASET), drawn))


def summary_text(result: FrontierResult, mode: Mode, teacher_command: str, exported: Mapping[str, Any],
                 seconds: float, quick: bool) -> str:
    """summary.md: the answer first (best network per budget, the paired comparisons with their
    noise, the training every row received), then how to build it for another budget, the
    whole table, and the command behind every row."""
    return "\n".join([*_intro(result, mode, quick), *_answer(result, exported), *_build(result, mode, exported),
                      *_rows(result, mode.setting, teacher_command, exported, seconds)])


def _intro(result: FrontierResult, mode: Mode, quick: bool) -> list[str]:
    teacher = result.teacher
    return [f"# reshape demo{' (quick)' if quick else ''}: the best network for a ReLU budget", "",
            f"Teacher: ResNet18 at width {mode.width} on {DATA} (packaged real Fashion-MNIST), "
            f"{teacher['relus']:,} ReLUs, {percent(teacher['top1'])} top-1, trained {mode.teacher_epochs} epochs on "
            f"{_images(mode.limit)} images ({mode.val:,} more held out for validation). Every method fits it to each "
            f"budget; every network's training is the teacher's plus {mode.epochs} student epochs on the same "
            f"images (a network trained from scratch gets {mode.teacher_epochs + mode.epochs} epochs; a HybReNet "
            f"base is trained as the teacher was). Accuracy on {result.tests:,} test images; "
            f"one seed, so each difference's standard error is the binomial one of the test images.", "",
            compute_note(result), "", "## Answer", ""]


def _answer(result: FrontierResult, exported: Mapping[str, Any]) -> list[str]:
    """The best network per budget (with its runner-up), the pairs, the training, the export."""
    lines = []
    for best, runner in best_per_budget(result):
        head = (f"- At **{budget_text(best['fraction'])} of the teacher's ReLUs ({best['budget']:,})**: "
                f"**{best['method']}** ({best['family']}), {percent(best['top1'])} with {best['relus']:,} ReLUs")
        lines.append(head + (", the only method that reached this budget." if runner is None else
                             f"; next {runner['method']} ({runner['family']}, {percent(runner['top1'])})."))
    lines += ["", "Each of our pipelines against the baseline it changes one thing of (same seed, same images; a "
                  "win needs more than 2 standard errors):", "", markdown_table(*pairs_table(result)), ""]
    passes = result.teacher["image_passes"]
    if passes:
        lines += [f"Training per row: {passes_text(passes)} image-passes for the teacher; every point's, parents "
                  "included, is in the table's `training` column.", ""]
    return lines + [f"Exported: {exported['method']} at {exported['budget']} ({exported['relus']:,} ReLUs, "
                    f"{percent(exported['top1'])}), the most accurate HybReNet, in [export/](export/) (spec, "
                    f"safetensors, ONNX checked to {exported['onnx_max_diff']:.2g}, timm config; README.md there "
                    "says how to load and rebuild it). Figure: [front.png](front.png).", ""]


def _build(result: FrontierResult, mode: Mode, exported: Mapping[str, Any]) -> list[str]:
    """The commands that build and train the exported method's network for another budget."""
    setting = mode.setting
    return ["## Build it for your own budget", "",
            "The HybReNet for N ReLUs of this teacher's backbone (spec only, instant), then trained the "
            "way the demo trained its points:", "", "```console",
            f"$ reshape synthesize --backbone {BACKBONE} --width {mode.width} --dataset {DATA} --relus N "
            "--criticality 1,4,2,3 --out my-hrn.json",
            "$ " + frontier_command(result.teacher["run"], [exported["method"]], ["N"], setting, [setting.seed],
                                    _sets_for([exported["method"]]), "my-frontier", PRESET),
            "```", ""]


def _rows(result: FrontierResult, setting: Setting, teacher_command: str, exported: Mapping[str, Any],
          seconds: float) -> list[str]:
    """Every row, then the command behind each, then where and when it ran."""
    machine = result.machine
    lines = ["## All points", "", markdown_table(*table(result)), "", "## Commands", "",
             "Each row, alone (the demo's folder reads it back; another --out trains it again):", "",
             "```console", f"$ {teacher_command}"]
    for row in result.summary:
        lines.append("$ " + frontier_command(result.teacher["run"], [row["method"]], [row["fraction"]], setting,
                                             [setting.seed], _sets_for([row["method"]]), result.out, PRESET))
    return lines + [f"$ {result.command}", f"$ {exported['command']}", "```", "",
                    f"Machine: {machine['cores']} cores, {machine['cpu']}, torch {machine['torch']}, "
                    f"commit {machine['commit']}, {machine['date']}. This call: {seconds:.0f} s.", ""]


def _sets_for(methods: Sequence[str]) -> tuple[str, ...]:
    """The `--set` options that concern ``methods`` (`reshape frontier` refuses the others)."""
    return tuple(s for s in SETS if s.split(".", 1)[0] in methods)


def _images(limit: int | None) -> str:
    return "all" if limit is None else f"{limit:,}"
