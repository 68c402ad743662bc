"""HybReNet synthesis as files: one budget's spec with its exact counts and PI cost, or a sweep
of budgets into a folder with one spec each and a summary table (what ``reshape synthesize``
runs, and the demo's CIFAR-100 designs).

``reshape.deepreshape.synthesize`` is the rule (a spec and the reasons for its shape); it sits
below counting and run directories. This module, above ``reshape.runs``, counts what the rule
made, prices it, and owns the files: a single spec is a file output (``file_target``), a sweep
folder is claimed as method ``synthesize``, so another sweep's specs are never mixed in or
partly overwritten.

    from reshape.synthesis import design, sweep
    one = design("resnet18", "cifar100", 180_000, out="hrn.json")
    many = sweep("specs", "resnet18", "cifar100", [25_000, 50_000, 100_000])
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .accounting import Count, count_spec
from .cost import CostEstimate, estimate
from .deepreshape import Explanation, synthesize
from .errors import ReshapeError
from .io import write_json
from .runs import RunDir, file_target, writes
from .spec import ArchSpec, save_spec

#: The sweep's table, beside one spec per budget.
SUMMARY_FILE = "summary.json"
writes("synthesize", SUMMARY_FILE, "*-*-*.json")  # what a sweep's force may delete: its specs and summary


@dataclass(frozen=True)
class Synthesized:
    """A synthesized network: its spec, why it has that shape, its exact counts and PI cost."""

    spec: ArchSpec
    explanation: Explanation
    count: Count
    cost: CostEstimate

    @property
    def budget(self) -> int:
        return self.explanation.budget

    def row(self, file: str) -> dict[str, Any]:
        """Its row of a sweep's summary, naming its spec ``file``."""
        return {"budget": self.budget, "spec": file, "shape": self.spec.name, "regime": self.explanation.regime,
                "widths": list(self.spec.widths), "relus": self.count.relus, "ratio": self.count.relus / self.budget,
                "macs": self.count.macs, "params": self.count.params,
                f"{self.cost.protocol}_online_s": self.cost.online_s}

    def to_dict(self) -> dict[str, Any]:
        """Spec, explanation, counts (without the per-layer list) and cost, as JSON."""
        counts = {k: v for k, v in self.count.to_dict().items() if k != "layers"}
        return {"spec": self.spec.to_dict(), "explanation": self.explanation.to_dict(), "count": counts,
                "cost": self.cost.to_dict()}


@dataclass(frozen=True)
class Sweep:
    """A finished sweep: its folder, one design per budget and the spec file of each."""

    out: Path
    designs: tuple[Synthesized, ...]
    files: tuple[Path, ...]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The summary table (``summary.json``), one row per budget."""
        return [d.row(f.name) for d, f in zip(self.designs, self.files)]


def design(backbone: str | ArchSpec, dataset: str, relus: int, *, width: int | None = None,
           macs: int | None = None, ranking: Sequence[int] | None = None, round_to: int = 8,
           protocol: str = "delphi", costs: dict[str, dict[str, Any]] | None = None,
           out: str | os.PathLike[str] | None = None, name_budget: bool = False) -> Synthesized:
    """The HybReNet for ``relus`` ReLUs (and ``macs`` MACs), counted and priced; saved to ``out``
    when given (checked first: never a file inside a network's run). ``width`` narrows a named
    backbone first, as ``reshape train`` does with a width. ``name_budget`` puts the budget in a
    failure's message (a sweep says which of its budgets failed)."""
    if out is not None:
        file_target(out)
    base: str | ArchSpec = backbone
    if width is not None:
        from .models import spec_for

        base = spec_for(str(backbone), dataset, width)
    try:
        spec, why = synthesize(base, dataset, relus, macs, ranking, round_to)
    except ReshapeError as exc:
        raise ReshapeError(f"budget {relus:,}: {exc}" if name_budget else str(exc)) from None
    counted = count_spec(spec)
    cost = estimate(counted.relus, counted.macs, counted.nonlinear_depth, protocol, costs)
    if out is not None:
        save_spec(spec, out)
    return Synthesized(spec, why, counted, cost)


def sweep(out: str | os.PathLike[str], backbone: str, dataset: str, budgets: Sequence[int], *,
          width: int | None = None, macs: int | None = None, ranking: Sequence[int] | None = None,
          round_to: int = 8, protocol: str = "delphi", costs: dict[str, dict[str, Any]] | None = None,
          force: bool = False, inputs: Sequence[str | os.PathLike[str]] = ()) -> Sweep:
    """One HybReNet per budget into the folder ``out`` (``<backbone>-<dataset>-<budget>.json``)
    and their table (``summary.json``). Every budget is synthesized before the folder is
    claimed, so a budget that cannot be met leaves nothing behind; the same sweep again
    rewrites the same specs, another is refused unless ``force`` (``inputs``, such as a
    criticality file, are never inside ``out``)."""
    designs = tuple(design(backbone, dataset, b, width=width, macs=macs, ranking=ranking, round_to=round_to,
                           protocol=protocol, costs=costs, name_budget=len(budgets) > 1) for b in budgets)
    folder = RunDir(out)
    params = {"backbone": backbone, "dataset": dataset, "budgets": list(budgets), "macs": macs,
              "ranking": None if ranking is None else list(ranking), "round_to": round_to, "protocol": protocol,
              **({"width": width} if width is not None else {})}  # width only when given: older sweeps read back
    folder.claim("synthesize", params, force=force, inputs=inputs)
    files = tuple(Path(out) / f"{backbone}-{dataset}-{d.budget}.json" for d in designs)
    for d, file in zip(designs, files):
        save_spec(d.spec, file)
    done = Sweep(Path(out), designs, files)
    write_json(Path(out) / SUMMARY_FILE, done.rows)
    folder.finish({"specs": [f.name for f in files]})
    return done
