"""``Setting``: what every method of one comparison shares, and its one set of defaults.

A setting is plain data (no torch here), so the command line takes its option defaults
from this dataclass and ``reshape snl`` and SNL in ``reshape frontier`` mean the
same network when run with defaults. ``reshape.methods`` turns it into training recipes
(``Job.config``) and data (``Job.data``).

One meaning of the training budget everywhere: ``epochs`` is what a method spends on
the student after its parent (the teacher, or a HybReNet base trained as the teacher
was): every stage together, split by ``stages()`` where a method has two. A network
trained from scratch gets the parent's epochs plus ``epochs`` (docs/frontier.md,
"Equal compute").
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import ReshapeError
from .values import UNIT, check_fields

#: Student epochs (every stage after the parent together) when a command is given none.
EPOCHS = 10
BATCH_SIZE = 128
#: KD weight of every distilled stage (CE gets 1 - alpha), in every command.
KD_ALPHA = 0.5


@dataclass(frozen=True)
class Setting:
    """The data and training budget of one comparison.

    ``val`` images are carved from the training split (seeded by ``seed``, before ``limit``
    cuts the rest) and never trained on: settings are chosen on them, the test split only
    reports. ``root``, ``device``, ``workers``, ``compile``, ``progress`` and ``shared``
    change where and how a run executes, not its result, so no fingerprint holds them;
    ``shared`` is a folder where stages that recur across budgets (a HybReNet base) are
    trained once (default: inside each method's own folder).
    """

    data: str
    limit: int | None = None
    val: int = 0
    seed: int = 0
    epochs: int = EPOCHS
    batch_size: int = BATCH_SIZE
    kd_alpha: float = KD_ALPHA
    root: str | None = None
    device: str = "auto"
    workers: int = 0
    compile: bool = False
    progress: bool = True
    shared: str | None = None

    RUNTIME = ("root", "device", "workers", "compile", "progress", "shared")

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ReshapeError(f"setting {name} must be a positive integer, got {value!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise ReshapeError(f"setting limit must be a positive number of images, got {self.limit!r}")
        if isinstance(self.val, bool) or not isinstance(self.val, int) or self.val < 0:
            raise ReshapeError(f"setting val must be a number of validation images >= 0, got {self.val!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ReshapeError(f"setting seed must be an integer >= 0, got {self.seed!r}")
        check_fields(self, "setting", kd_alpha=UNIT)

    @property
    def key(self) -> dict[str, Any]:
        """What a result depends on (every field but the runtime ones)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.RUNTIME}

    def stages(self) -> tuple[int, int]:
        """Student epochs of a two-stage method: (first stage, second stage), at least 1 each."""
        if self.epochs < 2:
            raise ReshapeError(f"two-stage methods need at least 2 epochs, got {self.epochs}")
        first = self.epochs // 2
        return first, self.epochs - first

    def with_seed(self, seed: int) -> "Setting":
        return dataclasses.replace(self, seed=seed)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0,1,2`` as seeds: non-empty, distinct integers >= 0 (a one-line error otherwise)."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise ReshapeError(f"seeds are comma-separated integers >= 0 such as 0,1,2; got {text!r}")
    try:
        seeds = [int(t) for t in items]
    except ValueError:
        raise ReshapeError(f"seeds are comma-separated integers >= 0 such as 0,1,2; got {text!r}") from None
    if any(s < 0 for s in seeds):
        raise ReshapeError(f"a seed must be >= 0, got {min(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ReshapeError(f"seed {next(s for s in seeds if seeds.count(s) > 1)} is given twice in {text!r}")
    return tuple(seeds)
