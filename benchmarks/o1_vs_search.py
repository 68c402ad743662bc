"""What O(1) buys (issue 26): DeepReShape's synthesized HybReNet against an Optuna search of the
same pipeline at the same budget, and a search warm-started with the synthesized network.

For each budget (a fraction of the teacher's ReLUs) and seed, on one teacher per seed:

* **O(1)**: the HybReNet the rules synthesize (base factor as published), trained and reduced
  by SNL exactly as the fair frontier does (``reshape.frontier.run_frontier``, ``hybrenet_snl``);
* **search**: ``reshape.search.search_pipeline`` over the ``hybrenet_snl`` space (stage
  multipliers, depths, culling, thinning, base factor), Optuna's default multi-objective
  sampler (TPE) with the ReLU budget as a constraint, ``--trials`` trials, every trial the same
  pipeline with the same setting (epochs, images, KD) as the O(1) network; the trial with the
  best validation top-1 is selected and reported on the test split. N = 10 is the first ten
  trials of the same study (a sequential sampler does not know N);
* **warm-started search**: a study of its own whose first trial is the synthesized network
  (``study.enqueue_trial``), ``--warm-trials`` trials;
* **search at O(1)'s MACs**: the cold study's trial selected on validation among those with no
  more MACs than the synthesized network (the search optimizes top-1 and ReLUs only, so its
  pick may buy accuracy with MACs; this row says how much of a gap that explains).

    python benchmarks/o1_vs_search.py --preset quick    # minutes: one budget, one seed, 4 trials
    python benchmarks/o1_vs_search.py --preset cpu      # hours on 2 cores; resumable
    python benchmarks/o1_vs_search.py --preset fair --storage postgresql://me@db/optuna   # machines

Every stage reads back what is done: rerun the same command to go on. Writes WORK/o1 (the
O(1) frontier), WORK/search/<cold|warm>-<label>-seed<S> (each study's trials), WORK/results.json
and WORK/o1-vs-search.png; with --record FILE a small JSON for docs/results/. They are written
after every finished budget-and-seed point too (``"partial": true``, the budgets with points so
far), so a run that a session's end stops leaves what it measured. ``--report-only`` rebuilds
them from WORK/results.json without training (after a change to the table or the figure).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # the frontier benchmark's teacher and preset
from frontier import PRESET, entry, preset_values, train_teacher  # noqa: E402

METHOD = "hybrenet_snl"
SPACE = "hybrenet_snl"
PRESETS: dict[str, dict[str, Any]] = {
    # The fair frontier's data and teacher (issue 22): hours per trial on 2 cores, for a GPU or machines.
    "fair": {"width": 8, "limit": 30000, "val": 5000, "teacher_epochs": 10, "epochs": 4, "seeds": "0,1,2",
             "fractions": "0.1,0.33,0.5", "trials": 30, "warm_trials": 10},
    # What 2 cores finish in a few sessions: 3,000 training images, 1,000 validation.
    "cpu": {"width": 8, "limit": 3000, "val": 1000, "teacher_epochs": 3, "epochs": 2, "seeds": "0,1,2",
            "fractions": "0.1,0.33,0.5", "trials": 30, "warm_trials": 10},
    "quick": {"width": 8, "limit": 600, "val": 200, "teacher_epochs": 1, "epochs": 2, "seeds": "0",
              "fractions": "0.33", "trials": 4, "warm_trials": 2},
}
#: Issue 26's goals: O(1) within this many points of the 30-trial search at <= 1/10 of its compute.
GAP_POINTS, COMPUTE_SHARE = 0.5, 0.1
#: Where the cold search's best-so-far is read for the N = 10 comparison.
SHORT_N = 10


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--data", default="fashion-mnist", help="Dataset name (default: fashion-mnist).")
    parser.add_argument("--root", help="Folder holding the dataset files.")
    for name, kind in (("width", int), ("limit", int), ("val", int), ("teacher_epochs", int), ("epochs", int),
                       ("trials", int), ("warm_trials", int)):
        parser.add_argument("--" + name.replace("_", "-"), type=kind, help=f"Overrides the preset's {name}.")
    parser.add_argument("--fractions", help="Budgets as fractions of the teacher's ReLUs, in the order to run them.")
    parser.add_argument("--seeds", help="Comma-separated seeds.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (not part of any result key).")
    parser.add_argument("--storage", help="Optuna storage of the studies (default: journal:WORK/search/studies.log, "
                                          "one machine); a database URL shares them with other machines.")
    parser.add_argument("--work", help="Folder (default runs/o1-vs-search-PRESET).")
    parser.add_argument("--record", help="Also write the table, curves, goals and machine to this small JSON.")
    parser.add_argument("--figure", help="Also copy the figure here (docs/figures/...).")
    parser.add_argument("--report-only", action="store_true",
                        help="Rebuild the table, goals, figure and record from WORK/results.json; train nothing.")
    args = parser.parse_args(argv)
    preset_values(parser, args, PRESETS)
    args.work = Path(args.work or f"runs/o1-vs-search-{args.preset}")
    args.storage = args.storage or f"journal:{args.work / 'search' / 'studies.log'}"
    if args.trials < SHORT_N or args.warm_trials < 1:
        if args.preset != "quick":
            parser.error(f"--trials must be at least {SHORT_N} and --warm-trials at least 1")
    return args


def best_so_far(trials: list[dict[str, Any]], max_macs: float = float("inf")) -> list[dict[str, Any]]:
    """After each trial (in number order), the trial selected so far: the best validation top-1
    among the feasible ones (with at most ``max_macs`` MACs); its test top-1 is what the search
    reports."""
    best: dict[str, Any] | None = None
    curve = []
    for t in trials:
        if (t["feasible"] and t["score"] is not None and (t["macs"] or 0) <= max_macs
                and (best is None or t["score"] > best["score"])):
            best = t
        curve.append(best)
    return curve


def study_rows(study: Any) -> list[dict[str, Any]]:
    """The study's complete trials in number order: ``reshape search --json``'s rows
    (``trial_record``) with what the benchmark adds (score, compute, worker, running times)."""
    from reshape.search import completed, trial_record

    rows = []
    for t in sorted(completed(study), key=lambda t: t.number):
        a = t.user_attrs
        rows.append({**trial_record(t), "feasible": bool(a.get("feasible")), "score": a.get("score"),
                     "compute": a.get("compute") or {}, "worker": a.get("worker"),
                     "start": t.datetime_start.timestamp() if t.datetime_start else None,
                     "end": t.datetime_complete.timestamp() if t.datetime_complete else None})
    return rows


def wall(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A study's wall time, the union of its trials' running intervals (a resume sessions later
    and trials that ran side by side on several workers counted once), and its worker processes."""
    total, span = 0.0, None
    timed = [r for r in rows if r.get("start") is not None and r.get("end") is not None]
    for start, end in sorted((r["start"], r["end"]) for r in timed):
        if span and start <= span[1]:
            span = (span[0], max(span[1], end))
            continue
        total += span[1] - span[0] if span else 0.0
        span = (start, end)
    total += span[1] - span[0] if span else 0.0
    return {"wall_s": round(total, 1), "workers": len({r["worker"] for r in rows if r.get("worker")})}


def spent(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The training a study did: every phase of every trial once (bases the trials share count
    once), image-passes and seconds."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        for phase in row["compute"].get("phases", []):
            key = (phase["run"], phase["method"]) if phase["method"].endswith("base") else (row["run_dir"], phase["run"])
            seen.setdefault(key, phase)
    return {"image_passes": sum(p.get("image_passes") or 0 for p in seen.values()),
            "seconds": round(sum(p.get("seconds") or 0.0 for p in seen.values()), 1)}


def run_study(args: argparse.Namespace, kind: str, label: str, seed: int, budget: int, teacher: Path,
              setting: Any) -> dict[str, Any]:
    """One cold or warm study for one budget and seed (resumed where it stopped): its rows,
    best-so-far curve, training spent, wall time and workers."""
    from reshape.search import load_space, search_pipeline

    name = f"{kind}-{label}-seed{seed}"
    trials = args.trials if kind == "cold" else args.warm_trials
    study = search_pipeline(load_space(SPACE), teacher, [budget], setting.with_seed(seed), trials, args.storage,
                            name, args.work / "search" / name, warm_start=kind == "warm",
                            log=lambda line: print(f"  [{name}] {line}", flush=True))
    return {"study": name, **measured(study)}


def measured(study: Any) -> dict[str, Any]:
    """A study's trials, best-so-far curve, training spent, wall time and workers."""
    rows = study_rows(study)
    return {"trials": rows, "curve": best_so_far(rows), "spent": spent(rows), **wall(rows)}


def side_by_side(points: list[dict[str, Any]], fractions: list[float], short_n: int) -> list[dict[str, Any]]:
    """Per budget, over seeds: test top-1 (mean, SE) of O(1), cold search at N = short_n and at
    all its trials, warm search; ReLUs, MACs, training spent; paired differences with SEs."""
    from reshape.compare import mean_se

    table = []
    for fraction in fractions:
        mine = [p for p in points if p["fraction"] == fraction]
        if not mine:
            continue
        arms = {"o1": [p["o1"] for p in mine],
                f"cold{short_n}": [p["cold"]["curve"][min(short_n, len(p["cold"]["curve"])) - 1] for p in mine],
                "cold": [p["cold"]["curve"][-1] for p in mine],
                "warm": [p["warm"]["curve"][-1] for p in mine],
                "cold_o1_macs": [(iso_mac_curve(p) or [None])[-1] for p in mine]}
        row: dict[str, Any] = {"fraction": fraction, "budget": mine[0]["budget"], "seeds": [p["seed"] for p in mine]}
        for arm, picks in arms.items():
            top1 = [100 * x["top1"] for x in picks if x and x.get("top1") is not None]
            mean, se = mean_se(top1)
            row[arm] = {"top1": mean, "se": se, "n": len(top1),
                        "relus": [x["relus"] if x else None for x in picks],
                        "macs": [x["macs"] if x else None for x in picks]}
        for ours, theirs in (("o1", "cold"), ("warm", "cold"), ("o1", f"cold{short_n}"), ("o1", "cold_o1_macs")):
            diffs = [100 * (a["top1"] - b["top1"]) for a, b in zip(arms[ours], arms[theirs])
                     if a and b and a.get("top1") is not None and b.get("top1") is not None]
            mean, se = mean_se(diffs)
            row[f"{ours}-{theirs}"] = {"diff": mean, "se": se, "n": len(diffs)}
        o1_s = sum(p["o1_spent"]["seconds"] for p in mine)
        for kind in ("cold", "warm"):
            row[f"{kind}_spent"] = {k: sum(p[kind]["spent"][k] for p in mine) for k in ("image_passes", "seconds")}
            row[f"{kind}_wall_s"] = sum(p[kind]["wall_s"] for p in mine)
            row[f"{kind}_workers"] = max(p[kind].get("workers", 1) for p in mine)
        row["o1_spent"] = {k: sum(p["o1_spent"][k] for p in mine) for k in ("image_passes", "seconds")}
        row["o1_design_s"] = max(p["design_s"] for p in mine)
        row["compute_share"] = (row["o1_spent"]["image_passes"] / row["cold_spent"]["image_passes"]
                                if row["cold_spent"]["image_passes"] else None)
        row["o1_seconds_share"] = o1_s / row["cold_spent"]["seconds"] if row["cold_spent"]["seconds"] else None
        table.append(row)
    return table


def goals(table: list[dict[str, Any]], trials: int, warm_trials: int) -> list[str]:
    """Issue 26's goals, one line per budget each, true whatever they say."""
    from reshape.compare import WIN_SE

    lines = []
    for row in table:
        gap, share = row["o1-cold"], row["compute_share"]
        label = f"{row['fraction']:.0%} ({row['budget']:,} ReLUs)"
        if gap["diff"] is None:
            lines.append(f"{label}: not measured")
            continue
        se = gap["se"] or 0.0
        close = gap["diff"] >= -GAP_POINTS or gap["diff"] + WIN_SE * se >= -GAP_POINTS
        cheap = share is not None and share <= COMPUTE_SHARE
        lines.append(f"{label}: O(1) - search({trials}) = {gap['diff']:+.2f} points (SE {se:.2f}, n {gap['n']}) at "
                     f"{share:.3f}x its training: {'MET' if close and cheap else 'NOT met'} "
                     f"(within {GAP_POINTS} point{'' if close else ': NO'}, <= {COMPUTE_SHARE:g}x{'' if cheap else ': NO'})")
        lines.append(f"{label}: the search's pick has {_mac_ratio(row)} the O(1) network's MACs; "
                     f"{_iso_macs(row['o1-cold_o1_macs'], trials)}")
        warm = row["warm-cold"]
        if warm["diff"] is not None:
            wse = warm["se"] or 0.0
            ok = warm["diff"] + WIN_SE * wse >= 0
            lines.append(f"{label}: warm search({warm_trials}) - cold search({trials}) = {warm['diff']:+.2f} points "
                         f"(SE {wse:.2f}): {'MET' if ok else 'NOT met'} (>= 0 within noise)")
    return lines


def markdown(table: list[dict[str, Any]], trials: int, warm_trials: int, short_n: int) -> str:
    """The side-by-side as four markdown tables (accuracy, paired differences, the picked
    networks' ReLUs and MACs, cost), the way docs/results.md shows it: test top-1 in %, mean ±
    standard error over seeds."""
    def pm(arm: dict[str, Any], key: str = "top1") -> str:
        sign = "+" if key == "diff" else ""
        return "-" if arm[key] is None else f"{arm[key]:{sign}.2f} ± {arm['se'] or 0:.2f}"

    def budget(row: dict[str, Any]) -> str:
        return f"{row['fraction']:.0%} ({row['budget']:,})"

    def mean(values: list[Any], scale: float = 1.0, fmt: str = ",.0f") -> str:
        known = [v for v in values if v]
        return f"{sum(known) / len(known) / scale:{fmt}}" if known else "-"

    def picks(row: dict[str, Any], key: str, scale: float = 1.0, fmt: str = ",.0f", unit: str = "") -> str:
        return " / ".join(mean(row[arm][key], scale, fmt) + unit
                          for arm in ("o1", "cold", "warm", "cold_o1_macs"))

    lines = [f"| budget (ReLUs) | seeds | O(1) | cold, best of {short_n} | cold, best of {trials} | "
             f"warm, best of {warm_trials} | cold ({trials}) at <= O(1)'s MACs |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {budget(r)} | {r['o1']['n']} | {pm(r['o1'])} | {pm(r[f'cold{short_n}'])} | {pm(r['cold'])} | "
              f"{pm(r['warm'])} | {pm(r['cold_o1_macs'])} |" for r in table]
    lines += ["", f"| budget (ReLUs) | O(1) - cold ({trials}) | O(1) - cold ({short_n}) | O(1) - cold ({trials}) "
                  f"at <= its MACs | warm ({warm_trials}) - cold ({trials}) |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {budget(r)} | {pm(r['o1-cold'], 'diff')} | {pm(r[f'o1-cold{short_n}'], 'diff')} | "
              f"{pm(r['o1-cold_o1_macs'], 'diff')} | {pm(r['warm-cold'], 'diff')} |" for r in table]
    lines += ["", "| budget (ReLUs) | ReLUs: O(1) / cold / warm / cold at <= O(1)'s MACs (mean of picks) | "
                  "MACs: the same |", "|---|---:|---:|"]
    lines += [f"| {budget(r)} | {picks(r, 'relus')} | {picks(r, 'macs', 1e6, '.2f', 'M')} |" for r in table]
    lines += ["", "| budget (ReLUs) | training, image-passes: O(1) / cold / warm | "
                  "O(1) share | training seconds: O(1) / cold / warm | wall s: cold / warm (workers) | design |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {budget(r)} | "
              f"{r['o1_spent']['image_passes']:,} / {r['cold_spent']['image_passes']:,} / "
              f"{r['warm_spent']['image_passes']:,} | {r['compute_share']:.3f}x | "
              f"{r['o1_spent']['seconds']:,.0f} / {r['cold_spent']['seconds']:,.0f} / "
              f"{r['warm_spent']['seconds']:,.0f} | "
              f"{r['cold_wall_s']:,.0f} / {r['warm_wall_s']:,.0f} ({r.get('cold_workers', 1)} / "
              f"{r.get('warm_workers', 1)}) | {1000 * r['o1_design_s']:.1f} ms |" for r in table]
    return "\n".join(lines) + "\n"


def _mac_ratio(row: dict[str, Any]) -> str:
    """The search's picks' MACs over the O(1) networks', per seed (``6.5x, 11.5x``)."""
    ratios = [f"{s / o:.1f}x" for s, o in zip(row["cold"]["macs"], row["o1"]["macs"]) if s and o]
    return ", ".join(ratios) or "unknown"


def _iso_macs(diff: dict[str, Any], trials: int) -> str:
    """The gap to the search restricted to the O(1) network's MACs, or that no trial had so few."""
    if diff["diff"] is None:
        return f"no trial of {trials} had as few MACs as the O(1) network"
    return (f"O(1) - search({trials}) among trials with at most its MACs = {diff['diff']:+.2f} points "
            f"(SE {diff['se'] or 0.0:.2f}, n {diff['n']})")


def iso_mac_curve(point: dict[str, Any]) -> list[dict[str, Any] | None]:
    """The cold search's best-so-far among trials with no more MACs than the O(1) network."""
    return best_so_far(point["cold"]["trials"], point["o1"]["macs"])


def figure(table: list[dict[str, Any]], points: list[dict[str, Any]], path: Path) -> None:
    """Best-so-far test top-1 (of the trial selected on validation) against trials, mean over
    seeds, one panel per budget, the O(1) point marked at trial 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(4.2 * len(table), 3.4), squeeze=False)
    for ax, row in zip(axes[0], table):
        mine = [p for p in points if p["fraction"] == row["fraction"]]
        arms = {"cold search": [p["cold"]["curve"] for p in mine], "warm search": [p["warm"]["curve"] for p in mine],
                "cold, at most O(1)'s MACs": [iso_mac_curve(p) for p in mine]}
        # Dots on the MAC-capped arm: its mean exists only once every seed has a trial that cheap,
        # which may be the last trial alone (a lone point draws no line).
        for (label, picks), style in zip(arms.items(), ("-", "--", ":.")):
            curves = [[100 * c["top1"] if c else float("nan") for c in curve] for curve in picks]
            n = min(len(c) for c in curves)
            mean = [sum(c[i] for c in curves) / len(curves) for i in range(n)]
            ax.plot(range(1, n + 1), mean, style, label=label, ms=4)
        ax.errorbar([1], [row["o1"]["top1"]], yerr=[row["o1"]["se"] or 0], fmt="*", ms=12, color="k",
                    label="O(1) synthesis")
        ax.set_title(f"{row['fraction']:.0%} of the teacher's ReLUs ({row['budget']:,})")
        ax.set_xlabel("trials")
        ax.set_ylabel("test top-1 (%) of the val-selected trial")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    if args.report_only:
        return report_again(args, argv)
    from reshape.frontier import run_frontier
    from reshape.methods import get_method
    from reshape.methods.hybrenet import synthesize_for
    from reshape.runs import load_trained
    from reshape.setting import Setting

    setting = Setting(data=args.data, limit=args.limit, val=args.val, seed=args.seeds[0], epochs=args.epochs,
                      batch_size=args.batch_size, root=args.root, device=args.device)
    teacher = train_teacher(argparse.Namespace(work=str(args.work), teacher_epochs=args.teacher_epochs,
                                               data=args.data, width=args.width), setting)
    command = "python benchmarks/o1_vs_search.py " + " ".join(argv)
    o1 = run_frontier(teacher, [METHOD], args.fractions, setting, args.work / "o1", command=command,
                      seeds=args.seeds, preset=PRESET)
    teachers = {r["seed"]: Path(r["run"]) for r in o1.teachers}
    points = []
    for fraction in args.fractions:
        for seed in args.seeds:
            row = next(r for r in o1.rows if r.get("method") == METHOD and r["seed"] == seed
                       and abs(r["fraction"] - fraction) < 1e-9)
            spec = load_trained(teachers[seed], args.data, args.root).spec
            start = time.perf_counter()
            synthesize_for(spec, args.data, row["budget"], get_method(METHOD).params(PRESET))
            design_s = time.perf_counter() - start
            o1_pick = {"top1": row["top1"], "relus": row["relus"], "macs": row["macs"]}
            print(f"{fraction:.0%} seed {seed}: O(1) {100 * row['top1']:.2f}% at {row['relus']:,} ReLUs", flush=True)
            cold = run_study(args, "cold", row["label"], seed, row["budget"], teachers[seed], setting)
            warm = run_study(args, "warm", row["label"], seed, row["budget"], teachers[seed], setting)
            points.append({"fraction": fraction, "seed": seed, "budget": row["budget"], "o1": o1_pick,
                           "o1_spent": {"image_passes": row["compute"]["image_passes"],
                                        "seconds": row["compute"]["seconds"]},
                           "design_s": design_s, "cold": cold, "warm": warm})
            if len(points) < len(args.fractions) * len(args.seeds):
                report(args, o1, command, points, partial=True)  # a killed run leaves what it has measured
    report(args, o1, command, points, partial=False)
    return 0


def report(args: argparse.Namespace, o1: Any, command: str, points: list[dict[str, Any]], partial: bool,
           rebuilt_by: str | None = None) -> None:
    """The side-by-side table, goals, curves and figure of the points measured so far; with
    ``partial`` the budgets still running are left out of the table and the record says so."""
    import shutil

    from reshape.io import write_json, write_text

    fractions = [f for f in args.fractions if any(p["fraction"] == f for p in points)]
    table = side_by_side(points, fractions, min(SHORT_N, args.trials))
    verdicts = goals(table, args.trials, args.warm_trials)
    storage = "journal file (one machine)" if args.storage.startswith("journal:") else "database (shared)"
    result = {"preset": args.preset, "command": command, **({"rebuilt_by": rebuilt_by} if rebuilt_by else {}),
              "machine": o1.machine, "storage": storage,
              "setting": o1.setting, "trials": args.trials, "warm_trials": args.warm_trials,
              "partial": partial, "points_done": len(points), "points_total": len(args.fractions) * len(args.seeds),
              "table": table, "goals": verdicts,
              "curves": [{"fraction": p["fraction"], "seed": p["seed"],
                          **{k: [None if c is None else round(100 * c["top1"], 2) for c in p[k]["curve"]]
                             for k in ("cold", "warm")}} for p in points]}
    write_json(args.work / "results.json", {**result, "points": points})
    write_text(args.work / "results.md", markdown(table, args.trials, args.warm_trials, min(SHORT_N, args.trials))
               + "\n" + "\n".join(verdicts) + "\n")
    figure(table, points, args.work / "o1-vs-search.png")
    if args.figure:
        shutil.copyfile(args.work / "o1-vs-search.png", args.figure)
    if args.record:
        write_json(args.record, result)
    print(json.dumps(table, indent=1)[:4000])
    print("\n".join([f"goals (issue 26){' so far' if partial else ''}", *verdicts]), flush=True)


def report_again(args: argparse.Namespace, argv: list[str]) -> int:
    """``--report-only``: the table, goals, figure and record of WORK/results.json, rebuilt."""
    from reshape.errors import ReshapeError
    from reshape.io import read_json

    path = args.work / "results.json"
    if not path.is_file():
        raise ReshapeError(f"{path} does not exist: run the benchmark first (without --report-only)")
    saved = read_json(path, "benchmark results")
    points = [refreshed(args, point) for point in saved["points"]]
    report(args, argparse.Namespace(machine=saved["machine"], setting=saved["setting"]), saved["command"],
           points, partial=saved["partial"], rebuilt_by="python benchmarks/o1_vs_search.py " + " ".join(argv))
    return 0


def refreshed(args: argparse.Namespace, point: dict[str, Any]) -> dict[str, Any]:
    """``point`` with its studies' trials read again from the storage: with several workers, one
    that reads its study when its own last trial ends can miss a trial another worker finishes
    after that (the study then holds all of them)."""
    import optuna

    from reshape.search import open_storage

    storage = open_storage(args.storage, create=False)
    for kind in ("cold", "warm"):
        point[kind].update(measured(optuna.load_study(study_name=point[kind]["study"], storage=storage)))
    return point


def main(argv: list[str] | None = None) -> int:
    return entry(parse, run, argv)


if __name__ == "__main__":
    sys.exit(main())
