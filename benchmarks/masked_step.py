"""What does a partial-ReLU network cost to train? One SGD step, masked vs plain ReLUs.

The same narrow ResNet18 (Fashion-MNIST geometry) is built twice: with plain ReLUs,
and with every ReLU layer a neuron-level MaskedReLU keeping half its positions. Steps
alternate between the two in one run, and which goes first flips every round so neither
always follows the other; prints the median step time of each and the ratio (target:
masked <= 1.15x plain).

    python benchmarks/masked_step.py [--width 16] [--batch-size 128] [--steps 20]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    from reshape.budget.masks import masked_spec, sites
    from reshape.models import spec_for
    from reshape.models import build

    spec = spec_for("resnet18", "fashion-mnist", args.width)
    plain = build(spec)
    layer_sites = sites(spec, plain)
    masked = build(masked_spec(spec, layer_sites, {s.name: s.size // 2 for s in layer_sites}, "neuron"))
    x = torch.randn(args.batch_size, spec.in_chans, spec.input_size, spec.input_size)
    y = torch.randint(0, spec.num_classes, (args.batch_size,))
    models = {"plain": plain, "masked": masked}
    optims = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(args.steps + 3):
        for key in (("plain", "masked") if i % 2 == 0 else ("masked", "plain")):
            model = models[key]
            start = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            optims[key].zero_grad(set_to_none=True)
            loss.backward()
            optims[key].step()
            if i >= 3:  # warm-up steps are not timed
                times[key].append(time.perf_counter() - start)
    p, m = statistics.median(times["plain"]), statistics.median(times["masked"])
    print(f"narrow ResNet18 (width {args.width}), batch {args.batch_size}, {args.steps} steps each, "
          f"{torch.get_num_threads()} threads")
    print(f"plain {p * 1e3:.1f} ms/step  masked {m * 1e3:.1f} ms/step  ratio {m / p:.3f}x "
          f"[target <= 1.15x: {'met' if m / p <= 1.15 else 'NOT met'}]")


if __name__ == "__main__":
    main()
