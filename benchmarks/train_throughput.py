"""Does the trainer cost throughput? Images/s of ``reshape.train.run_epochs`` vs a plain torch loop.

Both train the same narrow ResNet18 (fresh, same seed) on the same Fashion-MNIST-mini
images with the same batch size, optimizer and schedule, interleaved in one run after one warm-up batch; the
trainer's time is its whole ``run_epochs()`` call (checkpoint, weights and metrics writes
and the progress bar included). Prints the median images/s of each and their ratio
(target: trainer >= 0.95x the plain loop), by wall clock and by process CPU time.

    python benchmarks/train_throughput.py [--width 16] [--images 1024] [--epochs 2] [--repeats 5] [--json]

On a CPU shared with other jobs wall-clock images/s swing with the others' load; the
CPU-time figure (images per CPU-second of this process) is the steadier comparison
there, best with OMP_NUM_THREADS=1 so that no thread spin-waits.

``--shared`` measures what the CLI's OpenMP setting (``reshape.threads.configure_threads``:
OMP_WAIT_POLICY=PASSIVE, one thread per available CPU) is worth on a loaded machine:
the trainer's images/s with OpenMP's defaults and with the CLI's setting, each on a
quiet machine and next to competing busy processes (a pure-Python busy loop per
available CPU, ``--busy`` to change). Each measurement runs in a fresh interpreter,
because OpenMP reads its settings once, when torch loads it:

    python benchmarks/train_throughput.py --shared [--width 16] [--images 1024] [--repeats 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from reshape.data import load
from reshape.models import build, spec_for
from reshape.spec import ArchSpec
from reshape.train import TrainConfig, make_optimizer, make_scheduler, run_epochs


def _plain(spec: ArchSpec, data: Dataset, cfg: TrainConfig) -> Callable[[], None]:
    """A hand-written loop: DataLoader, forward, CE, backward, SGD step, LR step."""
    model = build(spec)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(loader))

    def run() -> None:
        model.train()
        for _ in range(cfg.epochs):
            for inputs, targets in loader:
                loss = F.cross_entropy(model(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss.item()

    return run


def _trainer(spec: ArchSpec, data: Dataset, cfg: TrainConfig) -> Callable[[], None]:
    """The whole ``run_epochs()`` call, writing its run directory to a temporary folder."""
    model = build(spec)

    def run() -> None:
        with tempfile.TemporaryDirectory() as out:
            run_epochs(model, spec, cfg, data, None, out)

    return run


def _timed(make: Callable[..., Callable[[], None]], *args: object) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one run, set-up excluded."""
    torch.manual_seed(0)
    run = make(*args)
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _setup(args: argparse.Namespace) -> tuple[ArchSpec, Dataset, TrainConfig, int]:
    spec = spec_for("resnet18", "fashion-mnist-mini", args.width)
    data = Subset(load("fashion-mnist-mini"), range(args.images))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, device="cpu", seed=0)
    images = args.epochs * (args.images // args.batch_size) * args.batch_size
    _timed(_plain, spec, Subset(data, range(args.batch_size)), cfg.replace(epochs=1))  # warm caches
    return spec, data, cfg, images


def trainer_vs_plain(args: argparse.Namespace) -> None:
    spec, data, cfg, images = _setup(args)
    runs: dict[str, list[tuple[float, float]]] = {"plain": [], "trainer": []}
    for i in range(args.repeats):  # alternate which goes first, so drifting load hits both alike
        for name in ("plain", "trainer") if i % 2 == 0 else ("trainer", "plain"):
            runs[name].append(_timed(_plain if name == "plain" else _trainer, spec, data, cfg))
    result: dict[str, object] = {"width": args.width, "images_per_run": images, "batch_size": args.batch_size,
                                 "threads": torch.get_num_threads(), "repeats": args.repeats}
    lines = [f"resnet18 width {args.width} on fashion-mnist-mini, {images} images/run, batch {args.batch_size}, "
             f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats (medians)"]
    ratios = []
    for clock, k in (("wall", 0), ("cpu", 1)):
        plain, trainer = ([images / r[k] for r in runs[n]] for n in ("plain", "trainer"))
        p, t = statistics.median(plain), statistics.median(trainer)
        ratios.append(t / p)
        result[clock] = {"plain_img_s": p, "trainer_img_s": t, "ratio": t / p, "plain_runs": plain,
                         "trainer_runs": trainer}
        lines.append(f"{clock:>4}: plain loop {p:7.1f} img/s  trainer {t:7.1f} img/s  "
                     f"(runs {', '.join(f'{x:.0f}' for x in plain)} | {', '.join(f'{x:.0f}' for x in trainer)})")
    lines.append(f"trainer / plain: {ratios[0]:.3f}x wall, {ratios[1]:.3f}x cpu  (target >= 0.95x)")
    print(json.dumps(result, indent=2) if args.json else "\n".join(lines))


# -- a shared machine: OpenMP's defaults against the CLI's setting, quiet and loaded --------------
#: How each child interpreter sets OpenMP up before torch loads: OpenMP's defaults, or what
#: ``reshape``'s main() does (``configure_threads``).
POLICIES = {
    "openmp-default": "",
    "reshape-cli": "from reshape.threads import configure_threads; configure_threads(); ",
}
_CHILD = ("import runpy, sys; {setup}sys.argv = [{script!r}, '--measure', *{argv!r}]; "
          "runpy.run_path({script!r}, run_name='__main__')")


def measure(args: argparse.Namespace) -> None:
    """One child: the trainer's median wall images/s over ``--repeats`` runs, as a JSON line."""
    spec, data, cfg, images = _setup(args)
    rates = [images / _timed(_trainer, spec, data, cfg)[0] for _ in range(args.repeats)]
    print(json.dumps({"img_s": statistics.median(rates), "runs": rates, "threads": torch.get_num_threads(),
                      "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))


def _child(policy: str, argv: list[str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    code = _CHILD.format(setup=POLICIES[policy], script=os.path.abspath(__file__), argv=argv)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def shared(args: argparse.Namespace) -> None:
    """img/s with OpenMP's defaults and with the CLI's setting, on a quiet and on a loaded machine."""
    from reshape.threads import available_cpus

    argv = ["--width", str(args.width), "--images", str(args.images), "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]
    busy = args.busy if args.busy is not None else available_cpus()
    rows = []
    for load_name in ("quiet", "loaded"):
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)] \
            if load_name == "loaded" else []
        try:
            for policy in POLICIES:
                rows.append({"machine": load_name, "busy_processes": len(hogs), "openmp": policy,
                             "loadavg_1min_before": os.getloadavg()[0], **_child(policy, argv)})
        finally:
            for hog in hogs:  # only the processes started here
                hog.kill()
                hog.wait()
    result = {"width": args.width, "images": args.images, "epochs": args.epochs, "batch_size": args.batch_size,
              "repeats": args.repeats, "available_cpus": available_cpus(), "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"resnet18 width {args.width}, {args.epochs} x {args.images} images/run, batch {args.batch_size}, "
          f"{args.repeats} runs per cell (median wall img/s), {available_cpus()} available CPUs")
    print(f"{'machine':<8} {'openmp':<15} {'threads':>7} {'load before':>11} {'img/s':>8}")
    for row in rows:
        print(f"{row['machine']:<8} {row['openmp']:<15} {row['threads']:>7} {row['loadavg_1min_before']:>11.1f} "
              f"{row['img_s']:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shared", action="store_true",
                        help="OpenMP's defaults vs the CLI's setting, on a quiet and on a loaded machine.")
    parser.add_argument("--busy", type=int, help="Competing busy processes in the loaded case "
                                                 "(default: one per available CPU).")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one --shared child
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args()
    if args.measure:
        measure(args)
    elif args.shared:
        shared(args)
    else:
        trainer_vs_plain(args)


if __name__ == "__main__":
    main()
