"""Fit a measured PI cost profile (per-ReLU and per-MAC constants) from `reshape measure` records.

With ``--measure DIR`` it first measures the calibration set: ResNet18 on 1x28x28 at
each ``--widths`` with all ReLUs, and with every ReLU layer masked down to each
``--keep`` fraction (same MACs, fewer ReLUs, so the constants separate). Then it fits
each part by least squares with an intercept, ``ReLU-layer bytes = relus * a + fixed`` and
``the rest = macs * b + fixed`` (the same for online seconds; ``reshape.measure.fit_costs``), over
every record given or measured, prints the fit and its error on each network, and with ``--write
NAME`` stores it as profile NAME in reshape/tables/pi_costs_measured.json with its source, machine
and date, where `reshape count --protocol NAME` and every cost estimate can use it.

    python scripts/fit_pi_costs.py --measure calib/ --protocol cheetah --widths 4,8 --keep 0.25
    python scripts/fit_pi_costs.py calib/*/pi_cheetah_fm64.json --write spu-cheetah

With ``--smooth OPS`` it measures smooth ops instead (GELU, softmax, ...: ``reshape.measure.
SMOOTH``), each per element from two runs of different sizes, and with ``--write NAME``
stores them as profile NAME's ``smooth`` constants, the ones ``reshape count`` prices a
ViT with:

    python scripts/fit_pi_costs.py --smooth all --protocol cheetah --write spu-cheetah
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from reshape.analytic import relu_sizes
from reshape.errors import ReshapeError
from reshape.io import read_json
from reshape.measure import SMOOTH, fit_costs, machine, measure, measure_smooth, result_name, write_profile, write_smooth
from reshape.spec import ArchSpec, ReluLayer, Stage, Stem, save_spec

TABLE = Path(__file__).resolve().parents[1] / "reshape" / "tables" / "pi_costs_measured.json"


def calibration_specs(widths: list[int], keeps: list[float]) -> dict[str, ArchSpec]:
    """ResNet18 on 1x28x28 per width, unmasked and masked to each kept fraction."""
    specs = {}
    for w in widths:
        base = ArchSpec(block="basic", stages=tuple(Stage(w * m, 2) for m in (1, 2, 4, 8)),
                        stem=Stem("cifar", w, 1), num_classes=10, in_chans=1, input_size=28,
                        name=f"resnet18 w{w} 1x28x28")
        specs[f"w{w}"] = base
        for k in keeps:
            layers = [ReluLayer(name, "masked", kept=max(1, round(k * size)), granularity="neuron")
                      for name, size in relu_sizes(base).items()]
            specs[f"w{w}-keep{k:g}"] = base.with_relus(layers)
    return specs


def _label(source: str) -> str:
    """A record's network, short: the folder of a calibration spec (w8-keep0.25), else the source."""
    path = Path(source)
    return path.parent.name if path.name == "spec.json" else str(source)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="*", help="pi_<protocol>_<field>.json files from `reshape measure`")
    ap.add_argument("--measure", metavar="DIR", help="measure the calibration set into DIR first")
    ap.add_argument("--protocol", default="cheetah", choices=("cheetah", "semi2k"))
    ap.add_argument("--widths", default="4,8", help="ResNet18 base widths to measure (default 4,8)")
    ap.add_argument("--keep", default="0.25", help="kept-ReLU fractions of the masked variants (default 0.25)")
    ap.add_argument("--link", default="auto", choices=("auto", "brpc", "mem"))
    ap.add_argument("--write", metavar="NAME", help="store the fit as profile NAME in reshape/tables/pi_costs_measured.json")
    ap.add_argument("--table", default=str(TABLE), help=argparse.SUPPRESS)
    ap.add_argument("--smooth", metavar="OPS", help=f"measure these smooth ops per element instead "
                                                     f"(comma-separated, or all: {','.join(SMOOTH)})")
    ap.add_argument("--json", action="store_true", help="print the fit and the records' summary as JSON")
    args = ap.parse_args(argv)
    if args.smooth:
        return _smooth(args)
    try:
        files = [Path(f) for f in args.records]
        if args.measure:
            root = Path(args.measure)
            specs = calibration_specs([int(w) for w in args.widths.split(",")],
                                      [float(k) for k in args.keep.split(",") if k])
            for i, (name, spec) in enumerate(specs.items(), 1):
                folder = root / name
                folder.mkdir(parents=True, exist_ok=True)
                save_spec(spec, folder / "spec.json")
                print(f"[{i}/{len(specs)}] {name}", file=sys.stderr, flush=True)
                measure(folder / "spec.json", args.protocol, out=folder, link=args.link,
                        progress=lambda text: print(f"    {text}", file=sys.stderr, flush=True))
                files.append(folder / result_name(args.protocol))
        records = [read_json(f, "measurement") for f in files]
        fitted = fit_costs(records)
        rows = [{"source": r["source"], "relus": r["counts"]["relus"], "macs": r["counts"]["macs"],
                 "bytes": r["measured"]["online_bytes"], "online_s": r["measured"]["online_s"],
                 "setup_s": r["measured"]["setup_s"], "max_abs_diff": r["check"]["max_abs_diff"]}
                for r in records]
        if args.write:
            date = datetime.now(timezone.utc).date().isoformat()
            write_profile(fitted, args.write, args.table, [_label(r["source"]) for r in records],
                          records[0]["machine"], date)
    except ReshapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"fit": fitted, "records": rows}, indent=2))
        return 0
    for row in rows:
        print(f"{row['source']}: {row['relus']:,} ReLUs, {row['macs']:,} MACs -> {row['bytes']:,} B, "
              f"{row['online_s']:.2f} s online (+{row['setup_s']:.2f} s setup), diff {row['max_abs_diff']:.1e}")
    print(f"fit ({fitted['protocol']}, {fitted['networks']} networks): "
          f"{fitted['relu_online_bytes']:.1f} B/ReLU + {fitted['mac_online_bytes']:.3f} B/MAC "
          f"+ {fitted['fixed_online_bytes']:,.0f} B per network, {fitted['relu_fixed_online_bytes']:,.0f} of it "
          f"in the ReLU layers (max rel. error {fitted['bytes_max_rel_error']:.1%}, ReLU part "
          f"{fitted['relu_bytes_max_rel_error']:.1%}); "
          f"{fitted['relu_online_us']:.2f} us/ReLU + {fitted['mac_online_us']:.4f} us/MAC "
          f"+ {fitted['fixed_online_us']:,.0f} us (max rel. error {fitted['us_max_rel_error']:.1%})")
    print("error on the calibration set (bytes):")
    for e in fitted["errors"]:
        print(f"  {_label(e['source'])}: measured {e['measured_bytes']:,.0f}, fit {e['predicted_bytes']:,.0f} "
              f"({e['rel_error']:+.1%} total, {e['relu_part_rel_error']:.1%} ReLU part)")
    if args.write:
        print(f"written as profile '{args.write}' to {args.table}")
    return 0


def _smooth(args: argparse.Namespace) -> int:
    """Measure smooth ops per element; with --write, store them in the profile."""
    ops = list(SMOOTH) if args.smooth == "all" else args.smooth.split(",")
    try:
        measured = []
        for i, op in enumerate(ops, 1):
            print(f"[{i}/{len(ops)}] {op}", file=sys.stderr, flush=True)
            measured.append(measure_smooth(op, args.protocol, link=args.link,
                                           progress=lambda text: print(f"    {text}", file=sys.stderr, flush=True)))
        if args.write:
            write_smooth(measured, args.write, args.table, machine(), datetime.now(timezone.utc).date().isoformat())
    except ReshapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(measured, indent=2))
        return 0
    for m in measured:
        print(f"{m['op']}: {m['online_bytes']:,.1f} B and {m['online_us']:,.1f} us per element "
              f"({args.protocol}; max diff {max(r['max_abs_diff'] for r in m['runs']):.1e})")
    if args.write:
        print(f"written as profile '{args.write}'.smooth to {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
