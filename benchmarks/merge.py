"""Shallow-block merges: speed, MAC facts and the ReLU/MAC reduction table.

Prints, measured in one run on CPU with random weights and non-trivial BN statistics:
  * exact merge of all 16 blocks of timm resnet50 at 224 (linearize, then merge with the
    built-in check of every block): wall and CPU seconds, median of --repeats [target < 5 s];
    the load average printed first says how much of the CPU the run had,
  * compact (3x3) merge of a stride-1 BasicBlock (resnet18 CIFAR layer1.0): block MACs
    before / after and the ratio [target 0.5],
  * the error of each form: exact (padding-exact) vs the linearized block; exact merge vs
    a standard-padding linearized block (interior and border); compact vs exact
    (centre crop and least-squares fit on spatially correlated inputs),
  * resnet18 CIFAR (32x32) when 2, 4, 6, 8 blocks are linearized and merged (blocks in
    order of inner ReLUs, largest first), exact and compact: ReLUs and MACs and the
    reduction against the original.

    python benchmarks/merge.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
from torch import nn


def _random_bn(model: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


def resnet50_exact(repeats: int) -> None:
    from reshape.graph import linearize, merge_blocks, trace
    from reshape.models import create

    model = _random_bn(create("resnet50"))
    times, cpu, merged = [], [], None
    for _ in range(repeats):
        mg = trace(copy.deepcopy(model), (3, 224, 224))
        names = [b.name for b in mg.blocks]
        t, c = time.perf_counter(), time.process_time()
        mg = linearize(mg, names)
        merged, reports = merge_blocks(mg, names, "exact")
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    worst = max(r.max_rel_error for r in reports)
    t = statistics.median(times)
    print(f"resnet50 @224, exact merge of all {len(reports)} blocks (linearize + merge + check): "
          f"{t:.2f} s wall, {statistics.median(cpu):.2f} s CPU over {torch.get_num_threads()} threads, "
          f"median of {repeats} [target < 5 s wall: {'met' if t < 5 else 'NOT met'}]; "
          f"worst block error {worst:.2e}; ReLUs {trace(model, (3, 224, 224)).relus:,} -> {merged.relus:,}, "
          f"MACs {mg.macs / 1e9:.2f}G (linearized) -> {merged.macs / 1e9:.2f}G")


def basic_block_compact() -> None:
    from reshape.graph import linearize, merge_block, trace
    from reshape.models import create

    mg = trace(_random_bn(create("resnet18_cifar", num_classes=10)), (3, 32, 32))
    before = mg.block("layer1.0").macs
    _, report = merge_block(linearize(mg, "layer1.0"), "layer1.0", "compact")
    print(f"compact 3x3 merge of stride-1 BasicBlock layer1.0 (64ch, 32x32): MACs {before:,} -> "
          f"{report.macs_after:,}, ratio {report.macs_after / before:.3f} [target 0.5]")


def errors() -> None:
    from timm.models.resnet import BasicBlock

    from reshape.graph import linearize, max_relative_error, merge_block, trace
    from reshape.graph.conv import compact, compose, fold_bn, fold_shortcut

    torch.manual_seed(0)
    block = _random_bn(nn.Sequential(BasicBlock(32, 32)))
    shape = (32, 16, 16)
    x = torch.randn(4, *shape)
    for padding in ("exact", "standard"):
        mg = linearize(trace(copy.deepcopy(block), shape), "0", padding=padding)
        part = mg.module.get_submodule
        exact = fold_shortcut(compose(fold_bn(part("0.conv1"), part("0.bn1")),
                                      fold_bn(part("0.conv2"), part("0.bn2"))), None)
        with torch.no_grad():
            ref, out = mg.module(x), torch.relu(exact(x))
        diff, scale = (out - ref).abs(), ref.abs().max()
        print(f"exact 5x5 merge vs the {padding}-padding linearized BasicBlock (32ch, 16x16): max relative "
              f"error everywhere {diff.max() / scale:.2e}, "
              f"interior (1 px in) {diff[..., 1:-1, 1:-1].max() / scale:.2e}")
    smooth = nn.functional.avg_pool2d(torch.randn(8, *shape), 3, 1, 1)  # spatially correlated inputs
    exact = compose(fold_bn(part("0.conv1"), part("0.bn1")), fold_bn(part("0.conv2"), part("0.bn2")))
    for name, small in (("centre crop", compact(exact, 3)),
                        ("least squares on correlated inputs", compact(exact, 3, inputs=smooth))):
        white = max_relative_error(exact, small, shape)
        with torch.no_grad():
            corr = float((small(smooth) - exact(smooth)).norm() / exact(smooth).norm())
        print(f"compact 3x3 ({name}) vs the exact 5x5 residual branch: max relative error on white "
              f"inputs {white:.3f}, relative L2 error on the correlated inputs {corr:.3f}")
    mg = linearize(trace(copy.deepcopy(block), shape), "0")
    _, report = merge_block(mg, "0", "compact")
    print(f"compact merge, built-in check vs the linearized block (shortcut and ReLU included): "
          f"max relative error {report.max_rel_error:.3f}")


def resnet18_table() -> None:
    from rich.console import Console
    from rich.table import Table

    from reshape.graph import linearize, merge_blocks, trace
    from reshape.models import create

    model = _random_bn(create("resnet18_cifar", num_classes=100))
    base = trace(model, (3, 32, 32))
    order = [b.name for b in sorted(base.blocks, key=lambda b: -b.inner_relus)]
    t = Table(title=f"resnet18 CIFAR 32x32: {base.relus:,} ReLUs, {base.macs / 1e6:.1f}M MACs",
              title_justify="left")
    for col in ("blocks", "last merged", "mode", "ReLUs", "ReLU reduction", "MACs", "MAC change"):
        t.add_column(col, justify="left" if col in ("last merged", "mode") else "right")
    for n in (2, 4, 6, 8):
        for mode in ("exact", "compact"):
            mg = linearize(trace(copy.deepcopy(model), (3, 32, 32)), order[:n])
            mg, _ = merge_blocks(mg, order[:n], mode)
            t.add_row(str(n), order[n - 1], mode, f"{mg.relus:,}",
                      f"{base.relus / mg.relus:.2f}x", f"{mg.macs / 1e6:.1f}M", f"{mg.macs / base.macs:.2f}x")
    Console().print(t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at start")
    resnet50_exact(args.repeats)
    basic_block_compact()
    errors()
    resnet18_table()


if __name__ == "__main__":
    main()
