"""How fast is `reshape count`? Wall time including start-up, and in-process cost.

Prints, side by side in one run:
  * `reshape count resnet50 --dataset imagenet --json` wall time (target < 3 s incl. start-up;
    the brief counts the target from after the ~3.5 s torch+timm import on slow machines),
  * the same count in-process after import, against one real CPU forward pass of the
    same model at batch 1 (ratio < 1 means counting is cheaper than running the model).

    python benchmarks/count_speed.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _cli_wall(repeats: int) -> tuple[float, float]:
    exe = shutil.which("reshape", path=str(Path(sys.executable).parent)) or "reshape"
    times, imports = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([exe, "count", "resnet50", "--dataset", "imagenet", "--json"],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, timm"], check=True)
        imports.append(time.perf_counter() - t)
    return statistics.median(times), statistics.median(imports)


def _in_process(repeats: int) -> tuple[float, float]:
    import timm
    import torch

    from reshape.accounting import count
    from reshape.models import resolve

    counts, forwards = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        r = resolve("resnet50", "imagenet", weights=False)
        count(r.model, r.input_shape)
        counts.append(time.perf_counter() - t)
    model = timm.create_model("resnet50").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            forwards.append(time.perf_counter() - t)
    return statistics.median(counts), statistics.median(forwards)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    wall, imp = _cli_wall(args.repeats)
    counted, forward = _in_process(args.repeats)
    print(f"reshape count resnet50 --dataset imagenet: {wall:.2f} s wall (median of {args.repeats}), "
          f"of which python+torch+timm import {imp:.2f} s -> {wall - imp:.2f} s after import "
          f"[target < 3 s wall: {'met' if wall < 3 else 'NOT met'}; after import: {'met' if wall - imp < 3 else 'NOT met'}]")
    print(f"in-process resolve+count {counted * 1e3:.0f} ms vs one CPU forward {forward * 1e3:.0f} ms: "
          f"ratio {counted / forward:.2f}x")


if __name__ == "__main__":
    main()
