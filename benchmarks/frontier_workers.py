"""Frontier points per hour with 1, 2 and 3 worker processes sharing one Optuna storage.

A tiny teacher (ResNet18 at --width on --limit fashion-mnist-mini images, one epoch) is
trained once; then, for each worker count N, a fresh frontier folder and journal file
run the same fixed points (width and DeepReDuce at --budgets, --epochs each) with one
coordinator (``reshape frontier --storage``) and N - 1 ``--worker`` processes started
together. Points per hour = points / wall time from the launch to the coordinator's
exit (process start-up and the final read-back included: what a user waits for).

    OMP_NUM_THREADS=1 python benchmarks/frontier_workers.py [--workers 1,2,3] [--json]

Each process trains with one thread, so N workers use N cores: on a machine with fewer
free cores than workers the extra ones only share, and on a machine shared with other
jobs the numbers move with the others' load (run it several times, or on a quiet
machine). The results.json of every N are checked to hold the same rows (wall seconds
aside), so the speed-up is for the same work.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = "fashion-mnist-mini"


def train_teacher(out: Path, width: int, limit: int) -> None:
    from reshape.methods import Setting, setting_config, setting_splits
    from reshape.models import spec_for
    from reshape.train import fit

    setting = Setting(data=DATA, limit=limit, epochs=1, batch_size=64, progress=False)
    fit(out, spec_for("resnet18", DATA, width), setting_config(setting, 1, 0.1), setting_splits(setting), progress=False)


def run(teacher: Path, folder: Path, workers: int, args: argparse.Namespace) -> dict:
    """One frontier on ``workers`` processes: its wall seconds and its rows (seconds blanked)."""
    common = [sys.executable, "-m", "reshape", "frontier", str(teacher), "--methods", args.methods,
              "--budgets", args.budgets, "--epochs", str(args.epochs), "--limit", str(args.limit),
              "--batch-size", "64", "--out", str(folder / "out"), "--storage", f"journal:{folder / 'queue.log'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    start = time.perf_counter()
    procs = [subprocess.Popen([*common, "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)]
    procs += [subprocess.Popen([*common, "--worker"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
              for _ in range(workers - 1)]
    procs[0].communicate()
    seconds = time.perf_counter() - start
    for proc in procs[1:]:
        proc.wait()
    if any(p.returncode for p in procs):
        raise SystemExit(f"a process failed with {workers} workers (codes {[p.returncode for p in procs]})")
    saved = json.loads((folder / "out" / "results.json").read_text())
    points = len(saved["rows"]) - 1
    rows = [{k: v for k, v in r.items() if k not in ("seconds", "run")} for r in saved["rows"]]
    return {"workers": workers, "points": points, "seconds": round(seconds, 1),
            "points_per_hour": round(3600 * points / seconds, 1), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,3", help="Worker counts to measure, comma separated.")
    parser.add_argument("--methods", default="width,deepreduce")
    parser.add_argument("--budgets", default="20%,35%,50%,65%,80%,95%")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=512, help="Training images of the teacher and each point.")
    parser.add_argument("--width", type=int, default=4, help="The teacher's base width.")
    parser.add_argument("--json", action="store_true", help="Print the measurements as JSON.")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="frontier-workers-") as tmp:
        teacher = Path(tmp, "teacher")
        train_teacher(teacher, args.width, args.limit)
        results = []
        for n in counts:
            results.append(run(teacher, Path(tmp, f"w{n}"), n, args))
            if not args.json:
                r = results[-1]
                print(f"{n} worker(s): {r['points']} points in {r['seconds']} s = {r['points_per_hour']} points/h",
                      file=sys.stderr)
    same = all(r["rows"] == results[0]["rows"] for r in results)
    base = results[0]["points_per_hour"]
    summary = [{k: v for k, v in r.items() if k != "rows"} | {"speedup": round(r["points_per_hour"] / base, 2)}
               for r in results]
    from reshape.frontier import machine

    report = {"command": "python " + " ".join(sys.argv), "machine": machine(), "methods": args.methods,
              "budgets": args.budgets, "epochs": args.epochs, "limit": args.limit, "same_rows": same,
              "results": summary}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in summary:
            print(f"{r['workers']} worker(s): {r['points_per_hour']:8.1f} points/h  ({r['speedup']}x)")
        print("rows identical across worker counts" if same else "ROWS DIFFER across worker counts")


if __name__ == "__main__":
    main()
