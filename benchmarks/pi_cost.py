"""Measured PI cost of several networks side by side: a teacher, a ReLU-pruned student, a HybReNet.

Each SOURCE (a run directory or a spec JSON) runs once under SecretFlow SPU with two
parties (``reshape measure``; needs ``make pi-backend``). The table puts the measured
online bytes and seconds next to the estimates of the published-constant profile and, if
present, the measured profile (``spu-cheetah``, fitted by scripts/fit_pi_costs.py), with
bytes per kept ReLU (the ReLU layers' bytes over the ReLU count, and all bytes over it).

    reshape demo --out demo-out --quick                     # a teacher, SENet and SNL at 10%
    reshape synthesize --backbone resnet18 --dataset fashion-mnist-mini --relus 20k --out hrn.json
    python benchmarks/pi_cost.py demo-out/teacher demo-out/frontier/snl/5pct demo-out/frontier/hybrenet/20pct hrn.json --protocol cheetah
    python benchmarks/pi_cost.py demo-out/teacher demo-out/frontier/senet/20pct --protocol semi2k --json out.json

A bare spec runs with seeded random weights: its cost is that of any trained network of
the same shape, since SPU's cost does not depend on the values. Without SOURCES it
measures its own set as specs: a width-8 ResNet18 teacher on 1x28x28, the same with
every ReLU layer masked to 10% (the shape of a SENet/SNL result at 10%, uniform
allocation) and the HybReNet ``reshape synthesize`` makes for fashion-mnist at
``--hrn-relus`` (its smallest has 24k ReLUs but 149M MACs: minutes under CHEETAH).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reshape.analytic import relu_sizes
from reshape.cost import estimate, load_costs
from reshape.deepreshape import synthesize
from reshape.errors import ReshapeError
from reshape.io import write_json
from reshape.measure import measure
from reshape.spec import ArchSpec, ReluLayer, Stage, Stem, save_spec

MEASURED_PROFILE = {"cheetah": "spu-cheetah", "semi2k": "spu-semi2k"}


def default_sources(folder: Path, hrn_relus: int) -> list[str]:
    """Spec files of the built-in set: teacher, teacher at 10% kept ReLUs, a HybReNet."""
    teacher = ArchSpec(block="basic", stages=tuple(Stage(8 * m, 2) for m in (1, 2, 4, 8)),
                       stem=Stem("cifar", 8, 1), num_classes=10, in_chans=1, input_size=28,
                       name="teacher: resnet18 w8 1x28x28")
    student = teacher.with_relus([ReluLayer(n, "masked", kept=max(1, size // 10), granularity="neuron")
                                  for n, size in relu_sizes(teacher).items()])
    hrn, _ = synthesize("resnet18", "fashion-mnist-mini", hrn_relus)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, spec in (("teacher", teacher), ("student-10pct", student), (f"hrn-{hrn_relus}", hrn)):
        save_spec(spec, folder / f"{name}.json")
        files.append(str(folder / f"{name}.json"))
    return files


def row(record: dict, costs: dict) -> dict:
    """One network's measured cost, per-ReLU bytes and measured/estimated ratios."""
    c, m = record["counts"], record["measured"]
    out = {"source": record["source"], "relus": c["relus"], "macs": c["macs"],
           "online_bytes": m["online_bytes"], "online_s": m["online_s"], "setup_s": m["setup_s"],
           "relu_bytes_per_relu": m["by_kind"]["relu"]["bytes"] / c["relus"],
           "bytes_per_relu": m["online_bytes"] / c["relus"], "max_abs_diff": record["check"]["max_abs_diff"]}
    for name in ("cheetah", MEASURED_PROFILE[record["backend"]["protocol"]]):
        if name in costs:
            est = estimate(c["relus"], c["macs"], c["nonlinear_depth"], name, costs)
            out[f"bytes_over_{name}"] = m["online_bytes"] / est.total_bytes if est.total_bytes else None
            out[f"seconds_over_{name}"] = m["online_s"] / est.online_s if est.online_s else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="*", help="run directories or spec JSON files (default: the built-in set)")
    ap.add_argument("--hrn-relus", type=int, default=25_000, help="HybReNet budget of the built-in set")
    ap.add_argument("--protocol", default="cheetah", choices=("cheetah", "semi2k"))
    ap.add_argument("--out", help="folder for the spec sources' records (default: next to each spec; "
                                  "the built-in set goes to pi-cost-out/)")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    costs = load_costs(measured=True)
    rows = []
    try:
        if not args.sources:
            args.sources = default_sources(Path(args.out or "pi-cost-out"), args.hrn_relus)
        for i, source in enumerate(args.sources, 1):
            print(f"[{i}/{len(args.sources)}] {source}", file=sys.stderr, flush=True)
            out = Path(args.out) / Path(source).stem if args.out and not Path(source).is_dir() else None
            record = measure(source, args.protocol, out=out,
                             progress=lambda text: print(f"    {text}", file=sys.stderr, flush=True))
            rows.append(row(record, costs))
    except ReshapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ratios = [k for k in rows[0] if k.startswith(("bytes_over", "seconds_over"))]
    head = ["source", "ReLUs", "MACs", "MB", "online s", "setup s", "B/ReLU (relu)", "B/ReLU (all)", *ratios]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r["source"], f"{r['relus']:,}", f"{r['macs']:,}", f"{r['online_bytes'] / 1e6:.2f}",
                 f"{r['online_s']:.2f}", f"{r['setup_s']:.2f}", f"{r['relu_bytes_per_relu']:.0f}",
                 f"{r['bytes_per_relu']:.0f}", *[f"{r[k]:.2f}" if r[k] is not None else "-" for k in ratios]]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        write_json(args.json, {"protocol": args.protocol, "rows": rows})
        print(f"rows written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
