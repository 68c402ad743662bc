"""``reshape snl``: the SNL baseline for a ReLU budget from a trained all-ReLU teacher."""
from __future__ import annotations

from typing import Any

import click

from ._common import user_errors
from ._params import MethodCommand, fit_method, method_arguments, report, teacher_run


@click.command("snl", cls=MethodCommand, method="snl")
@method_arguments()
@user_errors
def command(run_dir: str, budget: int, data: str, root: str | None, out: str, force: bool, as_json: bool,
            **opts: Any) -> None:
    """Fit the teacher in RUN_DIR to a ReLU --budget with SNL and write the result to --out.

    Phase 1 learns soft masks a in [0,1] per ReLU (Adam, KD + lambda*sum(a)) until the
    count (a > threshold) is within the budget or --mask-epochs run out (OUT/masks/);
    the B largest masks are then kept (OUT/snl.json). Phase 2 fine-tunes with the binary
    masks fixed (--lr, KD) for the rest of --epochs, which counts both phases as in
    `reshape frontier --methods snl` (the same defaults give the same network).

    \b
    Example:
      reshape snl runs/teacher --budget 20k --data fashion-mnist-mini --epochs 6 --lambda 1e-4 --out runs/snl20k
    """
    report(fit_method("snl", teacher_run(run_dir, data, root), budget, data, root, out, force, opts), as_json)
