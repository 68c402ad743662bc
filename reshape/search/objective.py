"""One search trial: sample a design -> spec -> exact count -> proxy training -> the trial's record.

A trial targets one budget from ``--budgets`` (an Optuna categorical, ``budget``).
HybReNet trials solve their base width in closed form for that target (the largest
width on the space's grid whose ReLUs fit it, ``reshape.deepreshape.largest_within``);
plain-ResNet trials sample a width multiplier and may overshoot. With ReLU optimizer
``none`` the network itself must fit the budget; with ``senet`` it is trained with all
its ReLUs, then SENet fits it to the budget using itself as the teacher.

Every number recorded comes from ``reshape.count`` on the network that was trained
(the SENet result when SENet ran). The budget constraint ``relus - budget <= 0`` is
set on the trial (``Trial.set_constraint``), where Optuna's samplers read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from torch.utils.data import Dataset

from ..count import Count, count, count_spec
from ..criticality import proxy_train
from ..methods import Job
from ..spec import ArchSpec
from ..train import TrainConfig
from .space import SearchSpace, WidthGrid

#: The trial attr that names the run directory's trial when a trial re-runs a killed one.
RUN_OF = "run_of"
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
    from .. import deepreduce, tables
    from ..deepreshape import backbone_spec
    from ..models import apply_preset
    from ..models.hybrenet import hybrenet

    budget = trial.suggest_categorical("budget", list(budgets))
    optimizer = space.relu_optimizer.sample(trial)
    base = apply_preset(backbone_spec(space.backbone).replace(relus=()), tables.dataset_preset(data))
    recipe = {"depths": space.depths.sample(trial), "cull": space.cull.sample(trial),
              "thin": space.thin.sample(trial)}
    if space.family == "hybrenet":
        multipliers = space.multipliers.sample(trial)
        expansion = space.expansion.sample(trial) if optimizer == "senet" else 1
        shaped = deepreduce.apply(base, recipe)
        spec = fit_width(lambda m: hybrenet(shaped, multipliers, m), int(expansion * budget),
                         space.base_width)
    else:
        spec = deepreduce.apply(base, {**recipe, "alpha": space.width_multiplier.sample(trial)})
    senet = optimizer == "senet"
    return Design(budget, spec, optimizer, space.allocation.sample(trial) if senet else "-",
                  space.granularity.sample(trial) if senet else "-")


def fit_width(shape: Callable[[int], ArchSpec], target: int, grid: WidthGrid) -> ArchSpec:
    """``shape(m)`` for the largest ``m`` on ``grid`` with at most ``target`` ReLUs (ReLUs are
    linear in ``m``, so one closed-form solve); the grid's smallest width when none fits."""
    from ..deepreshape import largest_within, total_relus

    on_grid = lambda k: grid.low + k * grid.step  # noqa: E731
    k = largest_within(lambda k: total_relus(shape(on_grid(k))), target, 0)
    return shape(on_grid(min(max(k, 0), (grid.high - grid.low) // grid.step)))


class Objective:
    """The callable Optuna runs per trial; returns (top-1, ReLUs[, MACs]) and records the trial.

    ``log`` receives one line when the design is known (before training).
    """

    def __init__(self, space: SearchSpace, budgets: Sequence[int], data: str, cfg: TrainConfig,
                 train_set: Dataset, test_set: Dataset, out: Path, macs: bool,
                 log: Callable[[str], None] = lambda line: None, progress: bool = True) -> None:
        self.space, self.budgets, self.data, self.cfg = space, tuple(budgets), data, cfg
        self.train_set, self.test_set, self.out, self.macs = train_set, test_set, Path(out), macs
        self.log, self.progress = log, progress

    def __call__(self, trial: Any) -> tuple[float, ...]:
        d = design(self.space, trial, self.budgets, self.data)
        run_dir = self.out / f"trial-{trial.user_attrs.get(RUN_OF, trial.number):04d}"
        arch = count_spec(d.spec)
        self.log(f"trial {trial.number}: {describe(d)}  {arch.relus:,} ReLUs  -> {run_dir}")
        record: dict[str, Any] = {"budget": d.budget, "run_dir": str(run_dir)}
        if d.relu_optimizer == "none" and arch.relus > d.budget:
            # Infeasible as designed: the constraint rules it out, training would be wasted.
            record.update(relus=arch.relus, macs=arch.macs, top1=None, trained=False,
                          spec=d.spec.to_dict())
            return self._finish(trial, record)
        arch_dir = run_dir / "arch" if d.relu_optimizer == "senet" else run_dir
        metrics = proxy_train(d.spec, self.cfg, self.train_set, self.test_set, arch_dir, self.progress)
        spec, final = d.spec, arch
        if d.relu_optimizer == "senet" and arch.relus > d.budget:
            metrics, spec, final = self._senet(d, arch_dir, run_dir / "senet")
        record.update(relus=final.relus, macs=final.macs, top1=metrics["test_top1"], trained=True,
                      spec=spec.to_dict())
        return self._finish(trial, record)

    def _senet(self, d: Design, arch_dir: Path, out: Path) -> tuple[dict[str, Any], ArchSpec, Count]:
        """SENet (``reshape.methods.senet.stages``) from the trained all-ReLU network in
        ``arch_dir`` down to ``d.budget``, on the trial's own splits and recipe."""
        from dataclasses import asdict, fields

        from ..data import Splits
        from ..methods import Setting
        from ..methods.senet import SENetParams, stages
        from ..runs import RunDir, load_run, load_trained

        teacher = load_trained(arch_dir)
        teacher.model.eval().requires_grad_(False)
        cfg = self.cfg
        params = SENetParams(allocation=d.allocation, granularity=d.granularity,
                             **{f.name: getattr(cfg, f.name) for f in fields(SENetParams) if hasattr(cfg, f.name)})
        setting = Setting(self.data, seed=cfg.seed, epochs=2 * cfg.epochs, batch_size=cfg.batch_size,
                          kd_alpha=cfg.kd_alpha, device=cfg.device, workers=cfg.workers, progress=self.progress)
        run = RunDir(out)
        manifest = run.claim("senet", {"params": asdict(params), "budget": d.budget, "teacher": teacher.digest,
                                       "setting": setting.key})
        if manifest.status != "done":
            splits = Splits(self.data, self.train_set, self.test_set, seed=cfg.seed)
            stages(_TrialJob("senet", teacher, d.budget, run, setting, manifest.fingerprint, splits=splits),
                   teacher, params)
            run.finish({})
        spec, model = load_run(out)
        return run.require_manifest().training["last"], spec, count(model, spec.input_shape)

    def _finish(self, trial: Any, record: dict[str, Any]) -> tuple[float, ...]:
        record["feasible"] = record["relus"] <= record["budget"]
        for key, value in record.items():
            trial.set_user_attr(key, value)
        trial.set_constraint(CONSTRAINT, record["relus"] - record["budget"])
        values = (record["top1"] or 0.0, float(record["relus"]))
        return (*values, float(record["macs"])) if self.macs else values


@dataclass
class _TrialJob(Job):
    """A method job on the trial's splits (the space's ``test_limit``, which ``Setting`` lacks)
    until the search runs its ReLU optimizer through the method registry."""

    splits: Any = None

    @property
    def data(self) -> Any:
        return self.splits


def describe(d: Design) -> str:
    """One line naming the design: budget, shape, ReLU removal and optimizer."""
    spec = d.spec
    removed = sum(1 for layer in spec.relus if layer.state == "removed")
    text = (f"budget {d.budget:,}  {spec.name or 'resnet'} widths {list(spec.widths)} "
            f"depths {list(spec.depths)}  {removed} ReLU layers removed")
    return text + (f"  senet ({d.allocation}, {d.granularity})" if d.relu_optimizer == "senet" else "")


def trial_record(trial: Any) -> dict[str, Any]:
    """What ``--json`` prints for a finished trial."""
    attrs = trial.user_attrs
    return {"number": trial.number, "params": trial.params, "budget": attrs.get("budget"),
            "relus": attrs.get("relus"), "macs": attrs.get("macs"), "top1": attrs.get("top1"),
            "feasible": attrs.get("feasible"), "run_dir": attrs.get("run_dir")}

