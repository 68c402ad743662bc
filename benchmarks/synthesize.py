"""How fast and how tight is `reshape synthesize`? In-process, over many budgets.

For each backbone x dataset, synthesizes a HybReNet for budgets spread log-uniformly
from the family minimum to 10M ReLUs and prints, side by side in one run:
  * median and 95th-percentile synthesis time (target: median < 50 ms), after one
    warm-up call that reads the timm backbone (its cost is printed apart as 'first');
  * achieved ReLUs / B: min, median, max (target: <= 1 and >= 0.98);
  * one exact meta-device count of the same specs (what `reshape count` runs), to show
    what the closed form saves: time ratio synthesis / count.

    python benchmarks/synthesize.py [--budgets 200]
"""
from __future__ import annotations

import argparse
import statistics
import time


def _bench(backbone: str, dataset: str, n: int) -> dict[str, float]:
    import numpy as np

    from reshape.accounting import count_spec
    from reshape.deepreshape import synthesize
    from reshape.errors import ReshapeError

    t = time.perf_counter()
    synthesize(backbone, dataset, 10**7)
    first = time.perf_counter() - t
    times, ratios, specs = [], [], []
    for budget in np.unique(np.logspace(4, 7, n).astype(int)).tolist():
        t = time.perf_counter()
        try:
            spec, why = synthesize(backbone, dataset, budget)
        except ReshapeError:  # below the family minimum
            continue
        times.append(time.perf_counter() - t)
        ratios.append(why.relus / budget)
        specs.append(spec)
    counts = []
    for spec in specs[:: max(1, len(specs) // 10)]:
        t = time.perf_counter()
        count_spec(spec)
        counts.append(time.perf_counter() - t)
    return {
        "budgets": len(times), "first_ms": first * 1e3,
        "median_ms": statistics.median(times) * 1e3,
        "p95_ms": statistics.quantiles(times, n=20)[-1] * 1e3,
        "ratio_min": min(ratios), "ratio_median": statistics.median(ratios), "ratio_max": max(ratios),
        "count_ms": statistics.median(counts) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=int, default=200, help="budgets per backbone x dataset")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    table = Table(title="reshape synthesize, in-process (targets: median < 50 ms; 0.98 <= ReLUs/B <= 1)",
                  title_justify="left")
    for col in ("backbone", "dataset", "budgets", "first ms", "median ms", "p95 ms",
                "ReLUs/B min", "median", "max", "meta count ms", "synth/count"):
        table.add_column(col, justify="left" if col in ("backbone", "dataset") else "right")
    worst = {"median_ms": 0.0, "ratio_min": 1.0, "ratio_max": 0.0}
    for backbone in ("resnet18", "resnet34", "resnet50"):
        for dataset in ("cifar100", "tinyimagenet", "imagenet"):
            r = _bench(backbone, dataset, args.budgets)
            worst = {"median_ms": max(worst["median_ms"], r["median_ms"]),
                     "ratio_min": min(worst["ratio_min"], r["ratio_min"]),
                     "ratio_max": max(worst["ratio_max"], r["ratio_max"])}
            table.add_row(backbone, dataset, str(r["budgets"]), f"{r['first_ms']:.0f}",
                          f"{r['median_ms']:.2f}", f"{r['p95_ms']:.2f}", f"{r['ratio_min']:.4f}",
                          f"{r['ratio_median']:.4f}", f"{r['ratio_max']:.4f}", f"{r['count_ms']:.0f}",
                          f"{r['median_ms'] / r['count_ms']:.3f}")
    console = Console(width=160)
    console.print(table)
    met = worst["median_ms"] < 50 and worst["ratio_min"] >= 0.98 and worst["ratio_max"] <= 1
    console.print(f"worst median {worst['median_ms']:.2f} ms, ReLUs/B in [{worst['ratio_min']:.4f}, "
                  f"{worst['ratio_max']:.4f}] -> targets {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
