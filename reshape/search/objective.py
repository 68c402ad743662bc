"""One search trial: sample a design -> spec -> exact count -> proxy training -> the trial's record.

A trial targets one of the study's ``budgets`` (an Optuna categorical, ``budget``).
HybReNet trials solve their base width in closed form for that target (the largest
width on the space's grid whose ReLUs fit it, ``reshape.analytic.largest_within``);
plain-ResNet trials sample a width multiplier and may overshoot. With ReLU optimizer
``none`` the network itself must fit the budget; with ``senet`` it is trained with all
its ReLUs, then the registered SENet method fits it to the budget using itself as the
teacher.

Every proxy trains through ``reshape.train.fit`` (seeded before it is built; a trial
queued again after its worker died resumes in the same folder). Every number recorded
comes from ``reshape.count`` on the network that was trained (the SENet result when
SENet ran). The budget constraint ``relus - budget <= 0`` is set on the trial
(``Trial.set_constraint``), where Optuna's samplers read it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import optuna

from .. import deepreduce, tables
from ..errors import BudgetUnreachable, ReshapeError
from ..analytic import largest_within, total_relus
from ..accounting import count_spec
from ..data import Splits
from ..deepreshape import backbone_spec
from ..methods import Setting, get_method
from ..runs import TrainedRun
from ..models import apply_preset
from ..models.hybrenet import hybrenet
from ..runs import SPEC_FILE
from ..spec import ArchSpec, load_spec
from ..train import TrainConfig, fit
from .space import PipelineSpace, SearchSpace, WidthGrid

#: The trial attr that names the run directory's trial when a trial re-runs a killed one.
RUN_OF = "run_of"
#: The trial attr marking a trial a warm start enqueued (its value: what enqueued it).
WARM_START = "warm_start"
#: The trial's one constraint: ReLUs over its budget (feasible when <= 0).
CONSTRAINT = "relus_over_budget"


@dataclass(frozen=True)
class Design:
    """What a trial decided: the network to train and how it meets its ReLU budget."""

    budget: int
    spec: ArchSpec
    relu_optimizer: str
    allocation: str
    granularity: str


def design(space: SearchSpace, trial: Any, budgets: Sequence[int], data: str) -> Design:
    """Sample ``trial``'s architecture from ``space``, sized for dataset ``data``."""
    budget = trial.suggest_categorical("budget", list(budgets))
    optimizer = space.relu_optimizer.sample(trial)
    base = apply_preset(backbone_spec(space.backbone).replace(relus=()), tables.dataset_preset(data))
    edits = {"depths": space.depths.sample(trial), "cull": space.cull.sample(trial),
             "thin": space.thin.sample(trial)}
    if space.family == "hybrenet":
        multipliers = space.multipliers.sample(trial)
        expansion = space.expansion.sample(trial) if optimizer == "senet" else 1
        shaped = deepreduce.apply(base, edits)
        spec = fit_width(lambda m: hybrenet(shaped, multipliers, m), int(expansion * budget),
                         space.base_width)
    else:
        spec = deepreduce.apply(base, {**edits, "alpha": space.width_multiplier.sample(trial)})
    senet = optimizer == "senet"
    return Design(budget, spec, optimizer, space.allocation.sample(trial) if senet else "-",
                  space.granularity.sample(trial) if senet else "-")


def fit_width(shape: Callable[[int], ArchSpec], target: int, grid: WidthGrid) -> ArchSpec:
    """``shape(m)`` for the largest ``m`` on ``grid`` with at most ``target`` ReLUs (ReLUs are
    linear in ``m``, so one closed-form solve); the grid's smallest width when none fits."""
    on_grid = lambda k: grid.low + k * grid.step  # noqa: E731
    k = largest_within(lambda k: total_relus(shape(on_grid(k))), target, 0)
    return shape(on_grid(min(max(k, 0), (grid.high - grid.low) // grid.step)))


class Objective:
    """The callable Optuna runs per trial; returns (top-1, ReLUs[, MACs]) and records the trial.

    ``data`` is what proxies train and score on; ``root`` locates its files for the SENet
    step, which reads the data through its ``Setting``. ``log`` receives one line when the
    design is known (before training).
    """

    def __init__(self, space: SearchSpace, budgets: Sequence[int], cfg: TrainConfig, data: Splits,
                 out: Path, macs: bool, log: Callable[[str], None] = lambda line: None,
                 progress: bool = True, root: str | None = None) -> None:
        self.space, self.budgets, self.cfg, self.data = space, tuple(budgets), cfg, data
        self.out, self.macs, self.log, self.progress, self.root = Path(out), macs, log, progress, root

    def __call__(self, trial: Any) -> tuple[float, ...]:
        d = design(self.space, trial, self.budgets, self.data.name)
        run_dir = self.out / f"trial-{trial.user_attrs.get(RUN_OF, trial.number):04d}"
        arch = count_spec(d.spec)
        self.log(f"trial {trial.number}: {describe(d)}  {arch.relus:,} ReLUs  -> {run_dir}")
        record: dict[str, Any] = {"budget": d.budget, "run_dir": None}
        if d.relu_optimizer == "none" and arch.relus > d.budget:
            # Infeasible as designed: the constraint rules it out, training would be wasted (and
            # no folder is made, so none is recorded).
            record.update(relus=arch.relus, macs=arch.macs, top1=None, trained=False,
                          spec=d.spec.to_dict())
            return self._finish(trial, record)
        record["run_dir"] = str(run_dir)
        trial.set_user_attr("run_dir", record["run_dir"])  # while it trains too: where to watch or resume it
        arch_dir = run_dir / "arch" if d.relu_optimizer == "senet" else run_dir
        trained = fit(arch_dir, d.spec, self.cfg, self.data, method="search", progress=self.progress)
        record.update(relus=arch.relus, macs=arch.macs, top1=trained.top1, trained=True, spec=d.spec.to_dict())
        if d.relu_optimizer == "senet" and arch.relus > d.budget:
            record.update(self._senet(d, arch_dir, run_dir / "senet"))
        return self._finish(trial, record)

    def setting(self) -> Setting:
        """The SENet step's ``Setting``: the study's data, seed and batch; each of SENet's two
        stages (locations, final) trains as many epochs as a proxy, as before the registry."""
        cfg = self.cfg
        return Setting(data=self.data.name, limit=self.data.limit, seed=cfg.seed, epochs=2 * cfg.epochs,
                       batch_size=cfg.batch_size, kd_alpha=cfg.kd_alpha, root=self.root, device=cfg.device,
                       workers=cfg.workers, progress=self.progress)

    def _senet(self, d: Design, arch_dir: Path, out: Path) -> dict[str, Any]:
        """SENet (the registered method) from the trained all-ReLU network in ``arch_dir`` down to ``d.budget``."""
        senet = get_method("senet")
        # The study's recipe (lr, optimizer, schedule, ...) wherever SENet's params have the knob, as before.
        recipe = {f.name: getattr(self.cfg, f.name) for f in dataclasses.fields(senet.params_type)
                  if hasattr(self.cfg, f.name)}
        result = senet.fit(arch_dir, d.budget, out, self.setting(),
                           senet.params(**recipe, allocation=d.allocation, granularity=d.granularity))
        spec = load_spec(Path(result.run) / SPEC_FILE)
        return {"relus": result.relus, "macs": result.macs, "top1": result.top1, "spec": spec.to_dict()}

    def _finish(self, trial: Any, record: dict[str, Any]) -> tuple[float, ...]:
        return finish(trial, record, self.macs)


def finish(trial: Any, record: dict[str, Any], macs: bool) -> tuple[float, ...]:
    """Record ``record`` on the trial, set its budget constraint, and return its objective
    values: the score (``score``, else test top-1; 0 when not trained), ReLUs[, MACs]."""
    record["feasible"] = record["relus"] <= record["budget"]
    for key, value in record.items():
        trial.set_user_attr(key, value)
    trial.set_constraint(CONSTRAINT, record["relus"] - record["budget"])
    values = (record.get("score", record["top1"]) or 0.0, float(record["relus"]))
    return (*values, float(record["macs"])) if macs else values


#: Trials in a row of one pipeline worker whose budget no network reached before it gives up:
#: a space ``check_reachable`` does not walk (no HybReNet) could otherwise prune for ever.
UNREACHABLE_IN_A_ROW = 200


class PipelineObjective:
    """A trial of a ``PipelineSpace``: the registered method with the sampled params, fit from
    ``teacher`` to the trial's budget under ``setting`` (its data, seed, epochs, validation
    split), exactly as a frontier point; so every trial trains like the O(1) network does.

    The score Optuna maximizes is the validation top-1 when the setting carves a validation
    split (settings are chosen on it; test top-1 only reports), else test top-1, recorded
    as such (``selected_on``).
    """

    def __init__(self, space: PipelineSpace, budgets: Sequence[int], teacher: TrainedRun, setting: Setting,
                 out: Path, log: Callable[[str], None] = lambda line: None, macs: bool = False) -> None:
        self.space, self.budgets, self.teacher, self.setting = space, tuple(budgets), teacher, setting
        self.out, self.log, self.macs = Path(out), log, macs
        self.unreachable = 0
        self.method = get_method(space.method)

    @property
    def selected_on(self) -> str:
        return "val" if self.setting.val else "test"

    def __call__(self, trial: Any) -> tuple[float, ...]:
        budget = trial.suggest_categorical("budget", list(self.budgets))
        values = {p.name: p.sample(trial) for p in self.space.params}
        run_dir = self.out / f"trial-{trial.user_attrs.get(RUN_OF, trial.number):04d}"
        shown = "  ".join(f"{k}={v}" for k, v in values.items())
        self.log(f"trial {trial.number}: {self.space.method} budget {budget:,}  {shown}  -> {run_dir}")
        record: dict[str, Any] = {"budget": budget, "run_dir": str(run_dir), "selected_on": self.selected_on}
        trial.set_user_attr("run_dir", record["run_dir"])  # while it trains too: where to watch or resume it
        try:
            result = self.method.fit(self.teacher, budget, run_dir, self.setting,
                                     self.method.params(self.space.preset, **values))
        except BudgetUnreachable as exc:  # no network of this design exists: nothing to score or count
            self.unreachable += 1
            if self.unreachable >= UNREACHABLE_IN_A_ROW:
                raise ReshapeError(f"{self.unreachable} trials in a row reached no network within their budget "
                                   f"(the last: {exc}); raise $budgets or widen the space") from None
            trial.set_user_attr("unreachable", str(exc))
            raise optuna.TrialPruned(f"unreachable: {exc}") from None
        self.unreachable = 0
        score = result.val_top1 if self.selected_on == "val" else result.top1
        record.update(relus=result.relus, macs=result.macs, top1=result.top1, val_top1=result.val_top1,
                      score=score, trained=True, spec=(result.built.get("base") or {}).get("spec"),
                      compute=result.compute, seconds=result.seconds)
        return finish(trial, record, self.macs)


def describe(d: Design) -> str:
    """One line naming the design: budget, shape, ReLU removal and optimizer."""
    spec = d.spec
    removed = sum(1 for layer in spec.relus if layer.state == "removed")
    text = (f"budget {d.budget:,}  {spec.name or 'resnet'} widths {list(spec.widths)} "
            f"depths {list(spec.depths)}  {removed} ReLU layers removed")
    return text + (f"  senet ({d.allocation}, {d.granularity})" if d.relu_optimizer == "senet" else "")


def trial_record(trial: Any) -> dict[str, Any]:
    """A finished trial as JSON data (what the search command prints as JSON)."""
    attrs = trial.user_attrs
    return {"number": trial.number, "params": trial.params, "budget": attrs.get("budget"),
            "relus": attrs.get("relus"), "macs": attrs.get("macs"), "top1": attrs.get("top1"),
            "val_top1": attrs.get("val_top1"), "feasible": attrs.get("feasible"), "run_dir": attrs.get("run_dir"),
            "warm_start": attrs.get(WARM_START)}

