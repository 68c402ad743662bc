"""The accuracy-vs-ReLU frontier on real data: every method in one harness, one training budget.

A narrow ResNet18 teacher is trained once on Fashion-MNIST (Debian's dataset-fashion-mnist,
all 60,000 training and 10,000 test images); then, for budgets of 2%, 5%, 10%, 25% and
50% of the teacher's ReLUs, each method builds a network within the budget and trains it
for the same number of student epochs (--epochs), with KD from its teacher:

  width           uniform width scaling of the teacher (largest alpha within the budget)
  deepreduce      DeepReDuce culling / thinning / stem stride / alpha (tables/deepreduce_ladder.json)
  snl             SNL: L1-driven soft masks (epochs/2) -> binarize -> KD fine-tune (epochs/2)
  senet           SENet: sensitivity -> water-filling -> locations (epochs/2) -> KD + AT (epochs/2)
  hybrenet_senet  DeepReShape: a HybReNet with 4B ReLUs (more where the smallest HybReNet has more,
                  capped at the teacher's) and at most 2x the teacher's MACs, trained like the
                  teacher, then SENet to B; where the MAC cap leaves it within B, the HybReNet
                  is trained like `width`
  shallow_senet   shallow blocks: the least sensitive blocks lose their inner ReLUs (down to 75%
                  of the teacher's ReLUs), then SENet to B

Every point is its own run directory under --work and its result file is written last,
so an interrupted run resumes where it stopped (finished points are read back, a partial
one resumes from its checkpoint). Prints a table (top-1, exact ReLUs, MACs, DELPHI cost
estimate, wall time), the two goals checked against SNL, and writes results.json and
frontier.png in --work.

    python benchmarks/frontier.py            # full: width 16, 15 teacher + 8 student epochs (hours on CPU)
    python benchmarks/frontier.py --quick    # width 8, 6,000 training images, 2 student epochs (< 30 min, 2 cores)
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

METHODS = ("width", "deepreduce", "snl", "senet", "hybrenet_senet", "shallow_senet")
OURS = ("senet", "hybrenet_senet", "shallow_senet")
FRACTIONS = (0.02, 0.05, 0.10, 0.25, 0.50)
PRESETS = {
    "full": {"width": 16, "limit": None, "teacher_epochs": 15, "epochs": 8},
    "quick": {"width": 8, "limit": 6000, "teacher_epochs": 6, "epochs": 2},
}
#: What a finished point depends on: a --work holding other values is refused, not mixed.
SETTING_KEYS = ("data", "width", "limit", "teacher_epochs", "epochs", "batch_size", "ranking",
                "snl_lambda", "snl_mask_lr", "at_weight", "hybrenet_factor", "hybrenet_macs", "shallow_keep", "seed")
SETTING_FILE = "setting.json"
POINT_FILE = "point.json"


@dataclasses.dataclass
class Setup:
    """What every method shares: the arguments, the data, the teacher and its counts."""

    args: argparse.Namespace
    train_set: Any
    test_set: Any
    spec: Any
    teacher: Any
    relus: int
    macs: int

    def config(self, epochs: int, lr: float, **changes: Any):
        from reshape.train import TrainConfig

        return TrainConfig(epochs=epochs, batch_size=self.args.batch_size, lr=lr, kd_alpha=0.5,
                           dataset=self.args.data, seed=self.args.seed, **changes)

    def teacher_config(self):
        return self.config(self.args.teacher_epochs, 0.1, warmup_epochs=int(self.args.teacher_epochs > 1))

    def split(self) -> tuple[int, int]:
        """Student epochs of a two-stage method: first stage, second stage."""
        first = self.args.epochs // 2
        return first, self.args.epochs - first


def train_run(setup: Setup, spec, cfg, out: Path, teacher=None) -> None:
    """Train ``spec`` from scratch into ``out`` (resumed if partial, skipped if finished)."""
    from reshape.models import build
    from reshape.train import completed_epochs, has_checkpoint, train

    if completed_epochs(out) >= cfg.epochs:
        return
    train(build(spec), spec, cfg, setup.train_set, setup.test_set, out, teacher=teacher,
          resume=has_checkpoint(out), progress=False)


def run_senet(setup: Setup, spec, teacher, budget: int, out: Path) -> None:
    from reshape.budget import senet

    first, second = setup.split()
    senet.run(spec, teacher, budget, out, setup.train_set, setup.test_set,
              setup.config(first, 0.05), setup.config(second, 0.05),
              at_weight=setup.args.at_weight, progress=False)


# -- the methods: each builds its network for ``budget`` in ``out`` and says how ----------------
def width(setup: Setup, budget: int, out: Path) -> dict[str, Any]:
    from reshape.deepreduce import widest

    spec, alpha = widest(setup.spec, budget)
    train_run(setup, spec.replace(name=f"{setup.spec.name}_a{alpha:g}"), setup.config(setup.args.epochs, 0.1),
              out, setup.teacher)
    return {"alpha": alpha}


def deepreduce(setup: Setup, budget: int, out: Path) -> dict[str, Any]:
    from reshape.deepreduce import fit_budget

    spec, recipe = fit_budget(setup.spec, budget, setup.args.ranking)
    train_run(setup, spec.replace(name=f"{setup.spec.name}_deepreduce"), setup.config(setup.args.epochs, 0.1),
              out, setup.teacher)
    return {"recipe": recipe}


def snl(setup: Setup, budget: int, out: Path) -> dict[str, Any]:
    from reshape.budget import snl as method
    from reshape.io import read_json

    first, second = setup.split()
    final = setup.config(second, 1e-3)
    method.run(setup.spec, setup.teacher, budget, out, setup.train_set, setup.test_set,
               method.mask_config(final, setup.args.snl_mask_lr, first), final,
               lam=setup.args.snl_lambda, warmup=0, progress=False)
    saved = read_json(out / method.RESULT_FILE, "SNL result")
    return {"reached_in_mask_phase": saved["reached"], "soft_relus": saved["soft_relus"]}


def senet(setup: Setup, budget: int, out: Path) -> dict[str, Any]:
    run_senet(setup, setup.spec, setup.teacher, budget, out)
    return {}


def hybrenet_senet(setup: Setup, budget: int, out: Path) -> dict[str, Any]:
    from reshape.deepreshape import synthesize
    from reshape.errors import ReshapeError
    from reshape.runs import load_run

    base_relus = min(setup.args.hybrenet_factor * budget, setup.relus)
    while True:  # below the smallest HybReNet of the regime, double the base until one exists
        try:
            spec, explanation = synthesize("resnet18", setup.args.data, base_relus, criticality=setup.args.ranking,
                                           macs=int(setup.args.hybrenet_macs * setup.macs))
            break
        except ReshapeError:
            if base_relus >= setup.relus:
                raise
            base_relus = min(2 * base_relus, setup.relus)
    how = {"base": spec.name, "base_relus": explanation.relus, "base_macs": explanation.macs}
    if explanation.relus <= budget:  # the MAC cap binds: the HybReNet itself fits, SENet has nothing to do
        train_run(setup, spec, setup.config(setup.args.epochs, 0.1), out, setup.teacher)
        return {**how, "senet": False}
    base_dir = out.parent / f"base-{spec.name}"  # budgets that synthesize the same base share it
    train_run(setup, spec, setup.teacher_config(), base_dir)
    base_spec, base = load_run(base_dir)
    run_senet(setup, base_spec, base, budget, out)
    return {**how, "senet": True, "base_top1": _top1(base_dir)}


def shallow_senet(setup: Setup, budget: int, out: Path) -> dict[str, Any]:
    from reshape.methods.shallow import linearize_spec

    keep = max(budget, int(setup.args.shallow_keep * setup.relus))
    spec, blocks = linearize_spec(setup.spec, setup.teacher, keep, _probe(setup))
    run_senet(setup, spec, setup.teacher, budget, out)
    return {"linearized_blocks": blocks}


MethodFn = Callable[[Setup, int, Path], dict[str, Any]]
RUNNERS: dict[str, MethodFn] = {f.__name__: f for f in (width, deepreduce, snl, senet, hybrenet_senet,
                                                         shallow_senet)}


# -- harness ---------------------------------------------------------------------------------
def _top1(run: Path) -> float:
    from reshape.train import read_metrics

    return read_metrics(run)[-1]["test_top1"]


def _probe(setup: Setup) -> list:
    """A few unaugmented training batches for block sensitivity (no augmentation, fixed seed)."""
    from reshape.data import probe_batches

    return probe_batches(setup.train_set)


def point(setup: Setup, method: str, fraction: float) -> dict[str, Any]:
    """One (method, budget) point, computed or read back from its finished run."""
    from reshape.cost import estimate
    from reshape.count import count
    from reshape.errors import ReshapeError
    from reshape.io import read_json, write_json
    from reshape.runs import load_run

    budget = int(fraction * setup.relus)
    out = Path(setup.args.work) / method / f"{100 * fraction:g}pct"
    if (out / POINT_FILE).is_file():
        return read_json(out / POINT_FILE, "frontier point")
    row: dict[str, Any] = {"method": method, "fraction": fraction, "budget": budget, "run": str(out)}
    start = time.perf_counter()
    try:
        row["how"] = RUNNERS[method](setup, budget, out)
    except ReshapeError as exc:  # e.g. width scaling cannot go below width 1
        row.update(reachable=False, why=str(exc))
        write_json(out / POINT_FILE, row)
        return row
    _, model = load_run(out)
    c = count(model, setup.spec.input_shape)
    cost = estimate(c.relus, c.macs, c.nonlinear_depth)
    row.update(reachable=True, relus=c.relus, macs=c.macs, depth=c.nonlinear_depth,
               within_budget=c.relus <= budget, top1=_top1(out), delphi_online_s=cost.online_s,
               delphi_total_gb=cost.total_bytes / 1e9, seconds=round(time.perf_counter() - start, 1))
    write_json(out / POINT_FILE, row)
    return row


def goals(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's two goals against SNL, one line per budget, true whatever they say."""
    ok = [r for r in rows if r.get("reachable") and r["method"] != "teacher"]
    ours = [r for r in ok if r["method"] in OURS]
    lines = []
    for s in (r for r in ok if r["method"] == "snl"):
        same = [r for r in ours if r["fraction"] == s["fraction"]]
        if same:
            best = max(same, key=lambda r: r["top1"])
            margin = 100 * (best["top1"] - s["top1"])
            lines.append(f"{100 * s['fraction']:g}%: best of ours {best['method']} {100 * best['top1']:.2f}% vs SNL "
                         f"{100 * s['top1']:.2f}% -> {margin:+.2f} points (goal >= +1: "
                         f"{'met' if margin >= 1 else 'NOT met'})")
        half = [r for r in ours if r["relus"] <= s["relus"] / 2]
        if half:
            best = max(half, key=lambda r: r["top1"])
            verdict = "met" if best["top1"] >= s["top1"] else "NOT met"
            lines.append(f"    SNL's {100 * s['top1']:.2f}% at {s['relus']:,} ReLUs; best of ours with <= half "
                         f"({s['relus'] // 2:,}): {best['method']} {100 * best['top1']:.2f}% at "
                         f"{best['relus']:,} (goal: {verdict})")
        else:
            lines.append(f"    no point of ours at <= half of SNL's {s['relus']:,} ReLUs: half-ReLU goal not measured")
    return lines


def machine() -> dict[str, Any]:
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parent).stdout.strip()
        commit += "-dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "gpu": gpu,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "commit": commit,
            "date": time.strftime("%Y-%m-%d")}


def teacher(args: argparse.Namespace, train_set, test_set) -> tuple[Any, Any]:
    from reshape.models import spec_for
    from reshape.runs import load_run

    spec = spec_for("resnet18", args.data, args.width)
    setup = Setup(args, train_set, test_set, spec, None, 0, 0)
    train_run(setup, spec, setup.teacher_config(), Path(args.work) / "teacher")
    return load_run(Path(args.work) / "teacher")


def check_setting(args: argparse.Namespace) -> None:
    """A --work made with other settings would mix incomparable points: refuse it."""
    from reshape.errors import ReshapeError
    from reshape.io import read_json, write_json

    setting = {k: getattr(args, k) for k in SETTING_KEYS}
    setting["ranking"] = list(setting["ranking"])
    path = Path(args.work) / SETTING_FILE
    if path.is_file():
        saved = read_json(path, "frontier setting")
        changed = [k for k in SETTING_KEYS if saved.get(k) != setting[k]]
        if changed:
            raise ReshapeError(f"{args.work} holds a frontier run with other settings "
                               f"({', '.join(f'{k} {saved.get(k)}' for k in changed)}); pick another --work")
    else:
        write_json(path, setting)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="The reduced preset (< 30 min on 2 CPU cores).")
    parser.add_argument("--data", default="fashion-mnist", help="Dataset name (default: fashion-mnist).")
    parser.add_argument("--width", type=int, help="Teacher stage-1 width (preset: 16, quick 8).")
    parser.add_argument("--limit", type=int, help="Training images (preset: all, quick 6000).")
    parser.add_argument("--teacher-epochs", type=int, help="Epochs of every all-ReLU network (preset 15, quick 6).")
    parser.add_argument("--epochs", type=int, help="Student epochs of every method (preset 8, quick 2).")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--methods", default=",".join(METHODS), help=f"Comma list of {', '.join(METHODS)}.")
    parser.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS),
                        help="Budgets as fractions of the teacher's ReLUs.")
    parser.add_argument("--ranking", default="1,4,2,3",
                        help="Stages least to most critical, for culling (DeepReDuce's ResNet18 ranking; "
                             "the measured Fashion-MNIST one in docs/results.md is within noise for stages 1-3).")
    parser.add_argument("--snl-lambda", type=float, default=1e-3,
                        help="SNL's initial L1 weight (published 1e-5 assumes 100+ epochs).")
    parser.add_argument("--snl-mask-lr", type=float, default=1e-2, help="SNL's Adam lr in the mask phase.")
    parser.add_argument("--at-weight", type=float, default=100.0,
                        help="SENet's attention-transfer weight (published 1000 dominates the loss in short runs: "
                             "docs/frontier.md).")
    parser.add_argument("--hybrenet-factor", type=int, default=4,
                        help="HybReNet base = this many times the budget (capped at the teacher's ReLUs).")
    parser.add_argument("--hybrenet-macs", type=float, default=2.0,
                        help="HybReNet base MACs at most this many times the teacher's (training cost).")
    parser.add_argument("--shallow-keep", type=float, default=0.75,
                        help="Shallow blocks linearize down to this fraction of the teacher's ReLUs.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="Run directory (default runs/frontier or runs/frontier-quick).")
    args = parser.parse_args(argv)
    preset = PRESETS["quick" if args.quick else "full"]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.work = args.work or ("runs/frontier-quick" if args.quick else "runs/frontier")
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    args.methods = methods
    try:
        args.fractions = [float(f) for f in args.fractions.split(",")]
        args.ranking = tuple(int(s) for s in args.ranking.split(","))
    except ValueError:
        parser.error("--fractions and --ranking take comma-separated numbers")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (two-stage methods get half each)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from reshape.errors import ReshapeError

    try:
        return run(args)
    except ReshapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from reshape.count import count
    from reshape.data import splits
    from reshape.io import write_json
    from reshape.report.pareto import Point, mark_fronts
    from reshape.report.plot import plot_front

    console = Console()
    command = "python benchmarks/frontier.py " + shlex.join(sys.argv[1:])
    check_setting(args)
    train_set, test_set = splits(args.data, limit=args.limit, seed=args.seed)
    console.print(f"[bold]teacher[/]: resnet18 width {args.width}, {args.teacher_epochs} epochs, "
                  f"{len(train_set):,} training images")
    spec, model = teacher(args, train_set, test_set)
    c = count(model, spec.input_shape)
    setup = Setup(args, train_set, test_set, spec, model.eval().requires_grad_(False), c.relus, c.macs)
    rows = [{"method": "teacher", "fraction": 1.0, "budget": c.relus, "reachable": True, "relus": c.relus,
             "macs": c.macs, "depth": c.nonlinear_depth, "top1": _top1(Path(args.work) / "teacher")}]
    for fraction in args.fractions:
        for method in args.methods:
            with console.status(f"{method} at {100 * fraction:g}% ({int(fraction * c.relus):,} ReLUs)"):
                row = point(setup, method, fraction)
            rows.append(row)
            shown = (f"{100 * row['top1']:.2f}% at {row['relus']:,} ReLUs in {row.get('seconds', '?')} s"
                     if row["reachable"] else f"unreachable: {row['why']}")
            console.print(f"{method:>15} {100 * fraction:>4g}%  {shown}")

    table = Table(title=f"Frontier on {args.data}: ResNet18 width {args.width}, {args.epochs} student epochs "
                        f"({len(train_set):,} training images)", title_justify="left")
    for col in ("method", "budget", "ReLUs", "top-1", "MACs", "DELPHI online s", "wall s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        if r["reachable"]:
            table.add_row(r["method"], f"{100 * r['fraction']:g}%", f"{r['relus']:,}", f"{100 * r['top1']:.2f}%",
                          f"{r['macs'] / 1e6:.1f}M", f"{r.get('delphi_online_s', 0):.3f}",
                          f"{r.get('seconds', '')}")
        else:
            table.add_row(r["method"], f"{100 * r['fraction']:g}%", "-", "unreachable", "-", "-", "-")
    console.print(table)
    verdicts = goals(rows)
    console.print("\n".join(["[bold]goals vs SNL[/]", *verdicts]))

    points = mark_fronts(Point(r["method"], r["relus"], 100 * r["top1"], "frontier") for r in rows
                         if r["reachable"] and r["method"] != "teacher")
    figure = plot_front(points, [], args.data, Path(args.work) / "frontier.png")
    result = {"command": command, "machine": machine(), "setting": {k: getattr(args, k) for k in SETTING_KEYS},
              "rows": rows, "goals": verdicts, "figure": str(figure)}
    write_json(Path(args.work) / "results.json", result)
    console.print(f"command: {command}\nwrote {Path(args.work) / 'results.json'} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
