"""Does the trainer cost throughput? Images/s of ``reshape.train.train`` vs a plain torch loop.

Both train the same narrow ResNet18 (fresh, same seed) on the same Fashion-MNIST-mini
images with the same batch size, optimizer and schedule, interleaved in one run after one warm-up batch; the
trainer's time is its whole ``train()`` call (checkpoint, weights and metrics writes
and the progress bar included). Prints the median images/s of each and their ratio
(target: trainer >= 0.95x the plain loop).

    python benchmarks/train_throughput.py [--width 16] [--images 2048] [--epochs 2] [--repeats 3]

On a CPU shared with other jobs the ratio is still fair (runs alternate), the
absolute images/s are not.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from reshape.cli.train import spec_for
from reshape.data import load
from reshape.models import build
from reshape.spec import ArchSpec
from reshape.train import TrainConfig, make_optimizer, make_scheduler, train


def _plain(spec: ArchSpec, data: Dataset, cfg: TrainConfig) -> float:
    """Seconds for a hand-written loop: DataLoader, forward, CE, backward, SGD step, LR step."""
    torch.manual_seed(cfg.seed)
    model = build(spec)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(loader))
    start = time.perf_counter()
    model.train()
    for _ in range(cfg.epochs):
        for inputs, targets in loader:
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss.item()
    return time.perf_counter() - start


def _trainer(spec: ArchSpec, data: Dataset, cfg: TrainConfig) -> float:
    torch.manual_seed(cfg.seed)
    model = build(spec)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        train(model, spec, cfg, data, None, out)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    spec = spec_for("resnet18", "fashion-mnist-mini", args.width)
    data = Subset(load("fashion-mnist-mini"), range(args.images))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, device="cpu", seed=0)
    images = args.epochs * (args.images // args.batch_size) * args.batch_size
    _plain(spec, Subset(data, range(args.batch_size)), cfg.replace(epochs=1))  # warm kernel caches
    runs: dict[str, list[float]] = {"plain": [], "trainer": []}
    for i in range(args.repeats):  # alternate which goes first, so drifting load hits both alike
        for name in ("plain", "trainer") if i % 2 == 0 else ("trainer", "plain"):
            runs[name].append(images / (_plain if name == "plain" else _trainer)(spec, data, cfg))
    plain, trainer = runs["plain"], runs["trainer"]
    p, t = statistics.median(plain), statistics.median(trainer)
    print(f"resnet18 width {args.width} on fashion-mnist-mini, {images} images/run, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats")
    print(f"plain torch loop  {p:8.1f} images/s   (runs: {', '.join(f'{x:.0f}' for x in plain)})")
    print(f"reshape trainer   {t:8.1f} images/s   (runs: {', '.join(f'{x:.0f}' for x in trainer)})")
    print(f"trainer / plain   {t / p:8.3f}x  (target >= 0.95x)")


if __name__ == "__main__":
    main()
