"""``reshape snl``: the SNL baseline for a ReLU budget from a trained all-ReLU teacher."""
from __future__ import annotations

import click

from ._budget import budget_options
from ._common import user_errors
from ._training import pop_training, train_config, training_options


@click.command("snl")
@budget_options
@click.option("--mask-epochs", type=int, help="Epochs of the mask phase (default: --epochs).")
@click.option("--mask-lr", type=float, default=1e-3, show_default=True, help="Adam lr of the mask phase.")
@click.option("--lambda", "lam", type=float, default=1e-5, show_default=True, help="Initial L1 weight on the masks.")
@click.option("--lambda-growth", type=float, default=1.1, show_default=True,
              help="Factor applied to lambda whenever the ReLU count stops falling.")
@click.option("--lambda-warmup", type=int, default=5, show_default=True,
              help="Epochs before lambda may grow.")
@training_options(epochs=10, lr=1e-3, kd_alpha=0.9, batch_size=128)
@user_errors
def command(run_dir: str, budget: int, data: str, root: str | None, out: str, granularity: str,
            mask_epochs: int | None, mask_lr: float, lam: float, lambda_growth: float,
            lambda_warmup: int, as_json: bool, **opts) -> None:
    """Fit the teacher in RUN_DIR to a ReLU --budget with SNL and write the result to --out.

    Phase 1 learns soft masks a in [0,1] per ReLU (Adam, KD + lambda*sum(a)) until the
    count (a > 0.01) is within the budget or --mask-epochs run out (OUT/masks/);
    the B largest masks are then kept. Phase 2 fine-tunes with the binary masks
    fixed (SGD, --lr, cosine, KD). Rerun the same command to resume.

    \b
    Example:
      reshape snl runs/teacher --budget 20k --data fashion-mnist-mini --epochs 3 --lambda 1e-4 --out runs/snl20k
    """
    from reshape.budget import snl
    from reshape.io import read_json

    from ._budget import final_report, teacher_and_data

    shared = pop_training(opts)
    final_cfg = train_config(shared, dataset=data)
    mask_cfg = snl.mask_config(final_cfg, mask_lr, mask_epochs)
    t = teacher_and_data(run_dir, data, root, limit=shared["limit"], seed=shared["seed"])
    metrics = snl.run(t.spec, t.model, budget, out, t.train_set, t.test_set, mask_cfg, final_cfg,
                      granularity=granularity, lam=lam, growth=lambda_growth, warmup=lambda_warmup)
    phase = read_json(f"{out}/{snl.RESULT_FILE}", "SNL result")
    final_report(out, metrics, as_json, {"method": "snl", "budget": budget,
                                         "budget_reached_by_masks": phase["reached"]})
