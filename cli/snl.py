"""``reshape snl``: the SNL baseline for a ReLU budget from a trained all-ReLU teacher."""
from __future__ import annotations

import click

from ._budget import budget_options, fit_method, report
from reshape.setting import EPOCHS

from ._common import AT_LEAST_ONE, NON_NEGATIVE, NON_NEGATIVE_FLOAT, POSITIVE, POSITIVE_FLOAT, user_errors
from ._training import pop_training, training_options


@click.command("snl")
@budget_options
@click.option("--mask-epochs", type=POSITIVE, help="At most this many of --epochs in the mask phase (default: "
                                                   "half); the fine-tuning gets the rest.")
@click.option("--mask-lr", type=POSITIVE_FLOAT, default=1e-3, show_default=True,
              help="Adam lr of the weights in the mask phase.")
@click.option("--gate-lr", type=POSITIVE_FLOAT, default=1e-3, show_default=True, help="Adam lr of the masks in the mask phase.")
@click.option("--lambda", "lam", type=NON_NEGATIVE_FLOAT, default=1e-5, show_default=True, help="Initial L1 weight on the masks.")
@click.option("--lambda-growth", type=AT_LEAST_ONE, default=1.1, show_default=True,
              help="Factor applied to lambda whenever the ReLU count stops falling.")
@click.option("--lambda-warmup", type=NON_NEGATIVE, default=5, show_default=True,
              help="Epochs before lambda may grow.")
@training_options(epochs=EPOCHS, lr=1e-3)
@user_errors
def command(run_dir: str, budget: int, data: str, root: str | None, out: str, force: bool, granularity: str,
            mask_epochs: int | None, mask_lr: float, gate_lr: float, lam: float, lambda_growth: float,
            lambda_warmup: int, as_json: bool, **opts) -> None:
    """Fit the teacher in RUN_DIR to a ReLU --budget with SNL and write the result to --out.

    Phase 1 learns soft masks a in [0,1] per ReLU (Adam, KD + lambda*sum(a)) until the
    count (a > 0.01) is within the budget or --mask-epochs run out (OUT/masks/);
    the B largest masks are then kept (OUT/snl.json). Phase 2 fine-tunes with the binary
    masks fixed (SGD, --lr, cosine, KD) for the rest of --epochs, which counts both phases
    as in `reshape frontier --methods snl` (the same defaults give the same network). Rerun the same command to resume; a finished run
    is read back, a run in --out with other settings is refused (--force starts it over).

    \b
    Example:
      reshape snl runs/teacher --budget 20k --data fashion-mnist-mini --epochs 6 --lambda 1e-4 --out runs/snl20k
    """
    training = pop_training(opts)
    result = fit_method("snl", run_dir, budget, data, root, out, force, training, granularity=granularity,
                        mask_epochs=mask_epochs, mask_lr=mask_lr, gate_lr=gate_lr, lam=lam, growth=lambda_growth,
                        warmup=lambda_warmup, final_lr=training["lr"])
    report(result, as_json)
