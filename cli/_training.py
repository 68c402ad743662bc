"""Options every training command shares (train, criticality, search; a method command's
``Setting``), named, typed and explained once; each command sets its own defaults."""
from __future__ import annotations

from typing import Any, Callable

import click

from reshape import values
from reshape.setting import BATCH_SIZE, KD_ALPHA

from ._common import NON_NEGATIVE, NON_NEGATIVE_FLOAT, POSITIVE, POSITIVE_FLOAT, UNIT, Real

#: option name -> (click type, default unless the command sets one, help); ``compile`` is a flag.
_OPTIONS: dict[str, tuple[Any, Any, str | None]] = {
    "epochs": (POSITIVE, 15, "Training epochs; for a method, every stage after the teacher together "
                             "(two-stage methods split them)."),
    "batch_size": (POSITIVE, BATCH_SIZE, "Batch size (per process under torchrun)."),
    "lr": (POSITIVE_FLOAT, 0.1, "Peak learning rate."),
    "optimizer": (click.Choice(["sgd", "adamw"]), "sgd", None),
    "weight_decay": (NON_NEGATIVE_FLOAT, 5e-4, None),
    "schedule": (click.Choice(["cosine", "step", "constant"]), "cosine", None),
    "warmup_epochs": (NON_NEGATIVE, 0, None),
    "label_smoothing": (Real(values.SMOOTHING), 0.0, None),
    "kd_temperature": (POSITIVE_FLOAT, 4.0, None),
    "kd_alpha": (UNIT, KD_ALPHA, "Weight of the KD term (CE gets 1 - alpha) when distilling."),
    "seed": (int, 0, None),
    "workers": (NON_NEGATIVE, 0, "DataLoader worker processes."),
    "device": (None, "auto", "auto, cpu, cuda or cuda:N."),
    "compile": (None, False, "Run the model through torch.compile."),
    "limit": (POSITIVE, None, "Train on at most this many images (a seeded subset; quick runs)."),
    "val": (NON_NEGATIVE, 0, "Validation images carved from the training split (seeded; never trained on; "
                             "settings are chosen on them)."),
}
#: Options that are not TrainConfig fields.
_RUN_ONLY = {"limit", "val"}
#: The ``Setting`` options of a command that runs a registered method (its params make the rest:
#: ``cli/_params.py``).
SETTING_OPTIONS = ("epochs", "batch_size", "kd_alpha", "seed", "workers", "device", "compile", "limit", "val")


def training_options(*, only: tuple[str, ...] | None = None,
                     **defaults: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the shared training options (or ``only`` those) to a click command, with per-command defaults."""
    unknown = set(defaults) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"no training option {sorted(unknown)}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed([n for n in _OPTIONS if only is None or n in only]):
            kind, default, help = _OPTIONS[name]
            value = defaults.get(name, default)
            flag = "--" + name.replace("_", "-")
            fn = (click.option(flag, name, is_flag=True, help=help) if name == "compile" else
                  click.option(flag, type=kind, default=value, show_default=value is not None, help=help))(fn)
        return fn

    return decorate


def train_config(opts: dict[str, Any], **overrides: Any):
    """A TrainConfig from the shared options in ``opts`` (other keys are ignored)."""
    from reshape.train import TrainConfig

    return TrainConfig(**{k: opts[k] for k in _OPTIONS if k in opts and k not in _RUN_ONLY}, **overrides)


def method_setting(opts: dict[str, Any], data: str, root: str | None) -> Any:
    """The one place options become a ``reshape.setting.Setting``: the options of ``opts`` that
    are its fields (``--epochs`` is every stage after the teacher, in every command)."""
    import dataclasses

    from reshape.setting import Setting

    fields = {f.name for f in dataclasses.fields(Setting)} - {"data", "root"}
    return Setting(data=data, root=root, **{k: opts[k] for k in fields if k in opts})
