"""Options every training command shares (train, criticality, search; a method command's setting).

    @training_options(epochs=15, lr=0.1)
    def command(..., **opts): cfg = train_config(opts, dataset=data)

Each command sets its own defaults; the option names, help and TrainConfig
mapping live here once.
"""
from __future__ import annotations

from typing import Any, Callable

import click

from reshape import values
from reshape.setting import BATCH_SIZE, KD_ALPHA

from ._common import NON_NEGATIVE, NON_NEGATIVE_FLOAT, POSITIVE, POSITIVE_FLOAT, UNIT, Real

#: option name -> (click decls, click kwargs); defaults are filled per command.
_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "epochs": (("--epochs",), {"type": POSITIVE, "help": "Training epochs; for a method, every stage after the "
                                                         "teacher together (two-stage methods split them)."}),
    "batch_size": (("--batch-size",), {"type": POSITIVE, "help": "Batch size (per process under torchrun)."}),
    "lr": (("--lr",), {"type": POSITIVE_FLOAT, "help": "Peak learning rate."}),
    "optimizer": (("--optimizer",), {"type": click.Choice(["sgd", "adamw"])}),
    "weight_decay": (("--weight-decay",), {"type": NON_NEGATIVE_FLOAT}),
    "schedule": (("--schedule",), {"type": click.Choice(["cosine", "step", "constant"])}),
    "warmup_epochs": (("--warmup-epochs",), {"type": NON_NEGATIVE}),
    "label_smoothing": (("--label-smoothing",), {"type": Real(values.SMOOTHING)}),
    "kd_temperature": (("--kd-temperature",), {"type": POSITIVE_FLOAT}),
    "kd_alpha": (("--kd-alpha",), {"type": UNIT, "help": "Weight of the KD term (CE gets 1 - alpha) when distilling."}),
    "seed": (("--seed",), {"type": int}),
    "workers": (("--workers",), {"type": NON_NEGATIVE, "help": "DataLoader worker processes."}),
    "device": (("--device",), {"help": "auto, cpu, cuda or cuda:N."}),
    "compile": (("--compile", "compile"), {"is_flag": True, "help": "Run the model through torch.compile."}),
    "limit": (("--limit",), {"type": POSITIVE, "help": "Train on at most this many images (a seeded subset; quick runs)."}),
    "val": (("--val",), {"type": NON_NEGATIVE, "help": "Validation images carved from the training split "
                                                       "(seeded; never trained on; settings are chosen on them)."}),
}
#: Options that are not TrainConfig fields.
_RUN_ONLY = {"limit", "val"}
_BASE = {"epochs": 15, "batch_size": BATCH_SIZE, "lr": 0.1, "optimizer": "sgd", "weight_decay": 5e-4,
         "schedule": "cosine", "warmup_epochs": 0, "label_smoothing": 0.0, "kd_temperature": 4.0,
         "kd_alpha": KD_ALPHA, "seed": 0, "workers": 0, "device": "auto", "compile": False, "limit": None, "val": 0}


#: The ``Setting`` options of a command that runs a registered method (its params make the rest:
#: ``cli/_params.py``).
SETTING_OPTIONS = ("epochs", "batch_size", "kd_alpha", "seed", "workers", "device", "compile", "limit", "val")


def training_options(*, only: tuple[str, ...] | None = None,
                     **defaults: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the shared training options (or ``only`` those) to a click command, with per-command defaults."""
    unknown = set(defaults) - set(_BASE)
    if unknown:
        raise TypeError(f"no training option {sorted(unknown)}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed([n for n in _OPTIONS if only is None or n in only]):
            decls, kwargs = _OPTIONS[name]
            value = defaults.get(name, _BASE[name])
            extra = {} if kwargs.get("is_flag") else {"default": value, "show_default": value is not None}
            fn = click.option(*decls, **kwargs, **extra)(fn)
        return fn

    return decorate


def train_config(opts: dict[str, Any], **overrides: Any):
    """A TrainConfig from the shared options in ``opts`` (other keys are ignored)."""
    from reshape.train import TrainConfig

    return TrainConfig(**{k: opts[k] for k in _OPTIONS if k in opts and k not in _RUN_ONLY}, **overrides)


def pop_training(opts: dict[str, Any]) -> dict[str, Any]:
    """Split the shared training options out of a command's keyword arguments."""
    return {k: opts.pop(k) for k in list(opts) if k in _OPTIONS}


def method_setting(opts: dict[str, Any], data: str, root: str | None) -> Any:
    """The one place options become a ``reshape.setting.Setting``: the options of ``opts`` that
    are its fields (``--epochs`` is every stage after the teacher, in every command)."""
    import dataclasses

    from reshape.setting import Setting

    fields = {f.name for f in dataclasses.fields(Setting)} - {"data", "root"}
    return Setting(data=data, root=root, **{k: opts[k] for k in fields if k in opts})
