"""Export a trained run in portable forms: spec, safetensors, ONNX and a timm config.

``DIR/spec.json`` + ``DIR/model.safetensors`` (masks included, as buffers) rebuild the
network anywhere reshape is installed; ``DIR/model.onnx`` runs it without PyTorch,
checked against PyTorch with onnxruntime right after export. With a timm config, timm's
own writer (``timm.models.save_for_hf``) writes ``DIR/config.json`` and the weights, so
timm rebuilds the network, weights loaded, from the folder alone::

    import reshape.models, timm  # reshape.models registers 'reshape_spec' in timm
    model = timm.create_model("local-dir:DIR", pretrained=True)

The config's ``model_args.spec`` is the spec, its ``pretrained_cfg`` the dataset's
normalisation at the spec's geometry (``reshape.models.spec_cfg``).

ONNX uses the TorchScript exporter (``dynamo=False``): it needs no extra package and
maps ``MaskedReLU``'s select (``torch.where``) to ONNX ``Where`` at opset 17.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import OwnershipError, ReshapeError
from ..io import atomic_path, write_bytes
from ..runs import GRAPH_FILE, SPEC_FILE, WEIGHTS_FILE, RunDir, load_trained, save_weights, writes
from ..spec import ArchSpec, save_spec

ONNX_FILE = "model.onnx"
CONFIG_FILE = "config.json"
writes("export", ONNX_FILE, CONFIG_FILE)  # what a forced rerun may delete beside spec and weights
ONNX_OPSET = 17
#: Largest |ONNX - PyTorch| difference accepted on the check batch (float32 logits).
ONNX_TOLERANCE = 1e-4
CHECK_BATCH = 4  # differs from the export batch of 1, so the dynamic batch axis is exercised


@dataclass(frozen=True)
class ExportResult:
    files: tuple[str, ...]
    onnx_max_diff: float | None = None


def export(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], onnx: bool = False,
           timm_config: bool = False, dataset: str | None = None, force: bool = False) -> ExportResult:
    """Write ``run_dir``'s spec and weights to ``out``, optionally ONNX and a timm config.

    ``dataset`` (default: the dataset the run was trained on) gives the config's mean/std.
    ``out`` is owned like a run directory (``run.json``, method ``export``): the same export
    again rewrites it, anything else there is refused unless ``force``.
    """
    run_dir, out = Path(run_dir), Path(out)
    run = load_trained(run_dir, dataset, check=False)
    spec, model = run.spec, run.model.eval()
    rewritten = (run_dir / GRAPH_FILE).is_file()
    if timm_config and rewritten:
        raise ReshapeError(f"{run_dir} is rewritten by graph passes ({GRAPH_FILE}); timm cannot rebuild "
                           "it from its spec: export without $timm_config and load it with "
                           "reshape.runs.load_run")
    dataset = None
    if timm_config:  # before any file is written: a dataset that does not fit leaves ``out`` untouched
        dataset = run.need_dataset("dataset", " for the config's mean/std")
        check_channels(spec, dataset)
    if out.resolve() == run_dir.resolve():  # forcing it would delete the run being exported
        raise OwnershipError(f"$out {out} is the run being exported; pick another folder")
    folder = RunDir(out)
    folder.claim("export", {"weights": run.digest, "rewritten": rewritten, "onnx": onnx, "timm_config": timm_config,
                            "dataset": dataset},
                 parent=run_dir, force=force)
    save_spec(spec, out / SPEC_FILE)
    if timm_config:
        save_timm(model, spec, dataset, out)
    else:
        save_weights(model, out / WEIGHTS_FILE)
    files = [out / SPEC_FILE, out / WEIGHTS_FILE]
    if rewritten:  # the rewrite steps make DIR a loadable run directory again
        write_bytes(out / GRAPH_FILE, (run_dir / GRAPH_FILE).read_bytes())
        files.append(out / GRAPH_FILE)
    diff = None
    if onnx:
        diff = export_onnx(model, spec, out / ONNX_FILE)
        files.append(out / ONNX_FILE)
    if timm_config:
        files.append(out / CONFIG_FILE)
    result = ExportResult(tuple(map(str, files)), diff)
    folder.finish({"files": [Path(f).name for f in result.files], "onnx_max_diff": diff})
    return result


def export_onnx(model: nn.Module, spec: ArchSpec, path: str | os.PathLike[str]) -> float:
    """Export ``model`` (eval mode, dynamic batch) to ONNX and return max |ONNX - PyTorch|.

    The check runs onnxruntime on a seeded batch right after export and fails when the
    difference exceeds ``ONNX_TOLERANCE``.
    """
    try:
        import onnxruntime
    except ImportError:
        raise ReshapeError("ONNX export is checked with onnxruntime, which is not installed: "
                           "pip install onnx onnxruntime") from None
    model = model.eval()
    shape = spec.input_shape
    example = torch.zeros(1, *shape)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # The TorchScript exporter warns that it is deprecated; it is chosen on purpose (see above).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        batch = torch.randn(CHECK_BATCH, *shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            expected = model(batch)
        got = torch.from_numpy(session.run(None, {"input": batch.numpy()})[0])
        diff = float((got - expected).abs().max())
        if not diff <= ONNX_TOLERANCE:
            raise ReshapeError(f"the ONNX model differs from PyTorch by {diff:.3g} "
                               f"(more than {ONNX_TOLERANCE:g}); the file was not written")
    return diff


def save_timm(model: nn.Module, spec: ArchSpec, dataset: str, out: Path) -> None:
    """``out/config.json`` and ``out/model.safetensors`` in timm's Hub layout, written by timm's
    public writer ``timm.models.save_for_hf`` into a temporary folder, then written into place
    atomically one file at a time (with the permissions of every other result file).

    The config records the spec as ``model_args.spec`` (``reshape_spec`` rebuilds from it)
    and the pretrained cfg of the spec on ``dataset`` (mean/std, crop, fixed input size).
    """
    from timm.models import save_for_hf

    from ..models import spec_cfg

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".timm-") as tmp:
        save_for_hf(model, tmp, model_config={"pretrained_cfg": spec_cfg(spec, dataset)},
                    model_args={"spec": spec.to_dict()}, safe_serialization=True)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            write_bytes(out / name, Path(tmp, name).read_bytes())


def check_channels(spec: ArchSpec, dataset: str) -> None:
    """Refuse a config whose dataset's mean/std do not fit the network's input channels."""
    from ..tables import dataset_preset

    preset = dataset_preset(dataset)
    if preset["in_chans"] != spec.in_chans:
        raise ReshapeError(f"{dataset} images have {preset['in_chans']} channels but the network takes "
                           f"{spec.in_chans}: its mean/std would not fit; pass the $dataset it was trained on",
                           param="dataset")
