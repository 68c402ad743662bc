"""Which SENet sensitivity estimator matches the released per-layer keep lists?

SENet's released pipeline (the RLNet code, sreetamasarkar/rlnet @ afbf3aa,
``sensitivity_list.yaml``) ships precomputed per-layer keep fractions for ResNet18 on
CIFAR-100 at 25k, 50k, 100k and 120k ReLUs; no code computes them. For each list this
script takes the same fraction of a trained teacher's ReLUs, plans it with each of our
estimators (``reshape.methods.senet.plan``) and compares the SHAPE of the two plans:

* the per-stage split of the kept ReLUs (stem, layer1..layer4) and its total-variation
  distance to the released split (0 = the same split, 1 = disjoint);
* Spearman's rank correlation of the 17 per-layer keep fractions.

Our ResNet18 has the released layer order and the same size ratios between layers at any
width and input size (each stage halves the ReLUs), so a fraction of the ReLUs is
comparable across geometries. The released lists come from CIFAR-100 models, which are
not available here: a Fashion-MNIST teacher only tells whether an estimator yields the
same kind of profile. ``--cifar100`` adds the full-width 32x32 CIFAR-100 ResNet18 at its
random initialisation (no data: only the weight-based estimators).

    python benchmarks/senet_allocation.py RUN [RUN ...] [--cifar100] [--json FILE]

RUN is a trained ResNet18 run directory (its dataset is read from its training config).
"""
from __future__ import annotations

import argparse
from typing import Sequence

#: rlnet sensitivity_list.yaml, ``ResNet18_c100_relu<k>k_sensitivity``: the keep fraction of each
#: ReLU layer, in the order stem, layer1.0.act1, layer1.0.act2, ..., layer4.1.act2.
RELEASED = {
    "25k": [0.004, 0.01, 0.01, 0.01, 0.011, 0.027, 0.038, 0.04, 0.042, 0.102, 0.124, 0.126, 0.13,
            0.28, 0.30, 0.30, 0.30],
    "50k": [0.02, 0.025, 0.03, 0.025, 0.025, 0.05, 0.05, 0.05, 0.05, 0.25, 0.25, 0.25, 0.25,
            0.5, 0.6, 0.6, 0.6],
    "100k": [0.00967, 0.0313, 0.036, 0.04236, 0.0466, 0.12, 0.165, 0.172, 0.188, 0.45555, 0.5505, 0.56, 0.583,
             1.0, 1.0, 1.0, 1.0],
    "120k": [0.012, 0.040, 0.046, 0.055, 0.060, 0.155, 0.214, 0.223, 0.244, 0.59, 0.714, 0.726, 0.756,
             1.0, 1.0, 1.0, 1.0],
}
#: ReLUs per layer of the released CIFAR ResNet18 (64 x 32 x 32 in the stem and stage 1).
RELEASED_SIZES = [65536] * 5 + [32768] * 4 + [16384] * 4 + [8192] * 4
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
ESTIMATORS = ("criticality", "pruning", "linearize")


def split(counts: Sequence[float]) -> list[float]:
    """Shares of the kept ReLUs in the stem and the four stages (17 layers in released order)."""
    groups = [counts[0], sum(counts[1:5]), sum(counts[5:9]), sum(counts[9:13]), sum(counts[13:17])]
    return [g / sum(groups) for g in groups]


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties averaged."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else float("nan")


def compare(label: str, spec, model, dataset: str, estimators: Sequence[str]) -> list[dict]:
    """One row per (released list, estimator) for one network."""
    from reshape.budget.masks import sites
    from reshape.data import load, probe_batches
    from reshape.methods import senet

    layer_sites = sites(spec, model)
    if len(layer_sites) != len(RELEASED_SIZES):
        raise SystemExit(f"{label}: {len(layer_sites)} ReLU layers, the released lists have 17 (a ResNet18?)")
    total = sum(s.size for s in layer_sites)
    batches = probe_batches(load(dataset, "train")) if "linearize" in estimators else None
    ranking = senet.resolve_ranking(dataset, spec)
    rows = []
    for name, keep in RELEASED.items():
        released = [f * n for f, n in zip(keep, RELEASED_SIZES)]
        fraction = sum(released) / sum(RELEASED_SIZES)
        rows.append({"network": label, "list": name, "estimator": "released", "fraction": fraction,
                     "split": split(released), "tv": 0.0, "rho": 1.0})
        for estimator in estimators:
            plan = senet.plan(spec, model, round(fraction * total), estimator, batches=batches, ranking=ranking)
            counts = [plan.counts[s.name] for s in layer_sites]
            ours = split(counts)
            rows.append({"network": label, "list": name, "estimator": estimator, "fraction": fraction,
                         "split": ours, "tv": sum(abs(a - b) for a, b in zip(ours, split(released))) / 2,
                         "rho": spearman([c / s.size for c, s in zip(counts, layer_sites)], keep)})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="Trained ResNet18 run directories.")
    parser.add_argument("--cifar100", action="store_true",
                        help="Add the CIFAR-100 ResNet18 at random init (weight-based estimators only).")
    parser.add_argument("--json", help="Also write the rows, command and machine to this file.")
    args = parser.parse_args(argv)
    from reshape.models import build, spec_for
    from reshape.runs import load_trained
    from reshape.train import load_config

    rows = []
    for run in args.runs:
        trained = load_trained(run)
        dataset = load_config(run).dataset
        rows += compare(f"{run} ({dataset})", trained.spec, trained.model.eval(), dataset, ESTIMATORS)
    if args.cifar100 or not args.runs:
        import torch

        torch.manual_seed(0)
        spec = spec_for("resnet18", "cifar100")
        rows += compare("resnet18 cifar100, untrained", spec, build(spec).eval(), "cifar100",
                        ("criticality", "pruning"))
    print("| network | list (fraction) | estimator | " + " | ".join(STAGES) + " | TV | Spearman |")
    print("|---|---|---|" + "---:|" * (len(STAGES) + 2))
    for r in rows:
        shares = " | ".join(f"{100 * v:.1f}%" for v in r["split"])
        print(f"| {r['network']} | {r['list']} ({100 * r['fraction']:.1f}%) | {r['estimator']} | {shares} | "
              f"{r['tv']:.2f} | {r['rho']:.2f} |")
    if args.json:
        import shlex
        import sys

        from reshape.frontier import machine
        from reshape.io import write_json

        write_json(args.json, {"command": "python benchmarks/senet_allocation.py " + shlex.join(sys.argv[1:]),
                               "machine": machine(), "stages": list(STAGES), "rows": rows})


if __name__ == "__main__":
    main()
