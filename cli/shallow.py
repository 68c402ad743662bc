"""``reshape shallow``: the shallow-block method (remove inner ReLUs of chosen blocks, merge them)."""
from __future__ import annotations

from typing import Any

import click

from reshape.report import run_views
from reshape.values import resolve_target

from ._common import Count, emit, user_errors
from ._params import MethodCommand, fit_method, method_arguments, teacher_run


@click.command("shallow", cls=MethodCommand, method="shallow", skip=("macs",))
@method_arguments(click.option("--relus", required=True, type=Count(fractions=True),
                               help="ReLU target per image: a count (300k, 1.2M) or a fraction of the model's "
                                    "(0.6, 60%; 1.0 is all of them, 1 is one ReLU)."))
@click.option("--macs", type=Count(fractions=True), help="Optional MAC target: a count (40M) or a fraction of the model's (0.8).")
@user_errors
def command(run_dir: str, relus: int | float, macs: int | float | None, data: str, root: str | None, out: str,
            force: bool, as_json: bool, **opts: Any) -> None:
    """Cut the ReLUs of the trained model in RUN_DIR to --relus by merging whole residual blocks.

    \b
    Stages:
    1. score each block: rise in KD loss when its inner ReLUs become identity, per
       ReLU saved; take blocks in increasing score order until --relus (and --macs)
       is met;
    2. linearize them (padding-exact form) and fine-tune with KD (OUT/linearized/);
    3. merge each into one conv: exact (checked to 1e-4 against stage 2) or compact
       (k x k, least-squares fit, then KD fine-tuned in OUT).
    OUT is a rewritten run: `reshape count OUT` and `reshape eval OUT` work on it.
    --epochs is the training budget: exact mode fine-tunes stage 2 for all of it,
    compact mode splits it between stages 2 and 3.

    \b
    Example:
      reshape train resnet18 --data fashion-mnist-mini --width 16 --out runs/teacher
      reshape shallow runs/teacher --relus 0.7 --data fashion-mnist-mini --epochs 6 --out runs/shallow70
    """
    from reshape.accounting import count

    teacher = teacher_run(run_dir, data, root)
    c = count(teacher.model, teacher.spec.input_shape)
    mac_target = {} if macs is None else {"macs": resolve_target(macs, c.macs)}
    result = fit_method("shallow", teacher, resolve_target(relus, c.relus), data, root, out, force, opts,
                        budget_option="--relus", **mac_target)
    emit(as_json, result.to_dict(), run_views.shallow_view(out, result.built), pipe_width=None)
