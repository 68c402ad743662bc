"""``train_model``: a network by name or spec file trained on a dataset, what ``reshape train``
runs and the demo's teacher; ``evaluate_run``: a trained run scored, what ``reshape eval``
runs. ``fit`` trains a spec it is given; this is the step before it that every caller would
otherwise repeat: resolve the name, and refuse what cannot work before the output folder is
claimed."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..data import load, splits
from ..models import geometry_change, require_memory, spec_for
from ..runs import load_trained, summarize
from ._config import TrainConfig
from ._distill import load_teacher
from ._fit import FitResult, fit
from ._dist import resolve_device
from ._loop import evaluate


def train_model(model: str, data: str, out: str | os.PathLike[str], cfg: TrainConfig, *,
                root: str | None = None, limit: int | None = None, val: int = 0, download: bool = False,
                width: int | None = None, teacher: str | os.PathLike[str] | None = None, retarget: bool = False,
                force: bool = False, log: Callable[[str], None] | None = None) -> FitResult:
    """Train ``model`` (a timm ResNet name, narrowed to ``width``, or a spec file) on ``data``
    (``limit`` images, ``val`` more held out) into ``out``, resume it, or read it back when done.

    Checked before ``out`` is claimed, so a refusal leaves nothing behind: a spec file of
    another geometry (refused unless ``retarget``; ``log`` is told how it changes), a spec
    too large for memory, a ``teacher`` trained on other data or of another geometry (KD
    from it otherwise).
    """
    spec = spec_for(model, data, width, retarget=retarget)
    change = geometry_change(model, data) if retarget else None
    if change and log is not None:
        log(f"retargeted: {change}")
    require_memory(spec)
    teacher_run = None
    if teacher is not None:
        teacher_run = load_trained(teacher, what=f"teacher {teacher}", check=False)
        load_teacher(teacher_run, spec, data)
    cfg = cfg.replace(dataset=data)
    return fit(out, spec, cfg, splits(data, root, limit, cfg.seed, download, val=val), teacher=teacher_run,
               parent=teacher, force=force, inputs=[model] if Path(model).is_file() else [])


def evaluate_run(run_dir: str | os.PathLike[str], data: str | None = None, root: str | None = None,
                 batch_size: int = 256, device: str = "auto") -> dict[str, Any]:
    """The test top-1/top-5 and loss of the trained model in ``run_dir`` on ``data`` (default:
    the dataset it records), with what made it (``method``, ``label``: its run.json) and its
    exact ReLU count; a dataset that does not fit the model is refused before scoring."""
    run = load_trained(run_dir, data, root)
    data = run.need_dataset("data")
    summary = summarize(run_dir, (run.spec, run.model))
    scores = evaluate(run.model.to(resolve_device(device)), load(data, "test", root), batch_size)
    return {"run": str(run_dir), "method": summary["method"], "label": summary["label"], "data": data, **scores,
            "relus": summary["relus"]}
