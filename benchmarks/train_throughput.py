"""Does the trainer cost throughput? Images/s of ``reshape.train.train`` vs a plain torch loop.

Both train the same narrow ResNet18 (fresh, same seed) on the same Fashion-MNIST-mini
images with the same batch size, optimizer and schedule, interleaved in one run after one warm-up batch; the
trainer's time is its whole ``train()`` call (checkpoint, weights and metrics writes
and the progress bar included). Prints the median images/s of each and their ratio
(target: trainer >= 0.95x the plain loop), by wall clock and by process CPU time.

    python benchmarks/train_throughput.py [--width 16] [--images 1024] [--epochs 2] [--repeats 5]

On a CPU shared with other jobs wall-clock images/s swing with the others' load; the
CPU-time figure (images per CPU-second of this process) is the steadier comparison
there, best with OMP_NUM_THREADS=1 so that no thread spin-waits.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from reshape.data import load
from reshape.models import build, spec_for
from reshape.spec import ArchSpec
from reshape.train import TrainConfig, make_optimizer, make_scheduler, train


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
    """The whole ``train()`` call, writing its run directory to a temporary folder."""
    model = build(spec)

    def run() -> None:
        with tempfile.TemporaryDirectory() as out:
            train(model, spec, cfg, data, None, out)

    return run


def _timed(make: Callable[..., Callable[[], None]], *args: object) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one run, set-up excluded."""
    torch.manual_seed(0)
    run = make(*args)
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    spec = spec_for("resnet18", "fashion-mnist-mini", args.width)
    data = Subset(load("fashion-mnist-mini"), range(args.images))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, device="cpu", seed=0)
    images = args.epochs * (args.images // args.batch_size) * args.batch_size
    _timed(_plain, spec, Subset(data, range(args.batch_size)), cfg.replace(epochs=1))  # warm caches
    runs: dict[str, list[tuple[float, float]]] = {"plain": [], "trainer": []}
    for i in range(args.repeats):  # alternate which goes first, so drifting load hits both alike
        for name in ("plain", "trainer") if i % 2 == 0 else ("trainer", "plain"):
            runs[name].append(_timed(_plain if name == "plain" else _trainer, spec, data, cfg))
    print(f"resnet18 width {args.width} on fashion-mnist-mini, {images} images/run, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats (medians)")
    ratios = []
    for clock, k in (("wall", 0), ("cpu", 1)):
        plain, trainer = ([images / r[k] for r in runs[n]] for n in ("plain", "trainer"))
        p, t = statistics.median(plain), statistics.median(trainer)
        ratios.append(t / p)
        print(f"{clock:>4}: plain loop {p:7.1f} img/s  trainer {t:7.1f} img/s  "
              f"(runs {', '.join(f'{x:.0f}' for x in plain)} | {', '.join(f'{x:.0f}' for x in trainer)})")
    print(f"trainer / plain: {ratios[0]:.3f}x wall, {ratios[1]:.3f}x cpu  (target >= 0.95x)")


if __name__ == "__main__":
    main()
