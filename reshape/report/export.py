"""Export a trained run in portable forms: spec, safetensors, ONNX and a timm config.

``DIR/spec.json`` + ``DIR/model.safetensors`` (masks included, as buffers) rebuild the
network anywhere reshape is installed; ``DIR/model.onnx`` runs it without PyTorch,
checked against PyTorch with onnxruntime right after export; ``DIR/config.json``
follows timm's pretrained-config layout so timm users rebuild it with two lines::

    import reshape.models, timm, safetensors.torch  # reshape.models registers 'reshape_spec'
    model = timm.create_model("reshape_spec", spec="DIR/spec.json")
    model.load_state_dict(safetensors.torch.load_file("DIR/model.safetensors"))

ONNX uses the TorchScript exporter (``dynamo=False``): it needs no extra package and
maps ``MaskedReLU``'s select (``torch.where``) to ONNX ``Where`` at opset 17.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ReshapeError
from ..io import atomic_path, write_bytes, write_json
from ..runs import GRAPH_FILE, SPEC_FILE, WEIGHTS_FILE, load_trained, save_weights
from ..spec import EXPANSION, ArchSpec, save_spec

ONNX_FILE = "model.onnx"
CONFIG_FILE = "config.json"
ONNX_OPSET = 17
#: Largest |ONNX - PyTorch| difference accepted on the check batch (float32 logits).
ONNX_TOLERANCE = 1e-4
CHECK_BATCH = 4  # differs from the export batch of 1, so the dynamic batch axis is exercised


@dataclass(frozen=True)
class ExportResult:
    files: tuple[str, ...]
    onnx_max_diff: float | None = None


def export(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], onnx: bool = False,
           timm_config: bool = False, dataset: str | None = None) -> ExportResult:
    """Write ``run_dir``'s spec and weights to ``out``, optionally ONNX and a timm config.

    ``dataset`` (default: the dataset the run was trained on) gives the config's mean/std.
    """
    run_dir, out = Path(run_dir), Path(out)
    run = load_trained(run_dir, dataset, check=False)
    spec, model = run.spec, run.model.eval()
    rewritten = (run_dir / GRAPH_FILE).is_file()
    if timm_config and rewritten:
        raise ReshapeError(f"{run_dir} is rewritten by graph passes ({GRAPH_FILE}); timm cannot rebuild "
                           "it from its spec: export without --timm-config and load it with "
                           "reshape.runs.load_run")
    config = None
    if timm_config:  # before any file is written: a dataset that does not fit leaves --out untouched
        config = timm_pretrained_config(spec, run.need_dataset("--dataset", " for the config's mean/std"))
    save_spec(spec, out / SPEC_FILE)
    save_weights(model, out / WEIGHTS_FILE)
    files = [out / SPEC_FILE, out / WEIGHTS_FILE]
    if rewritten:  # the recipe makes DIR a loadable run directory again
        write_bytes(out / GRAPH_FILE, (run_dir / GRAPH_FILE).read_bytes())
        files.append(out / GRAPH_FILE)
    diff = None
    if onnx:
        diff = export_onnx(model, spec, out / ONNX_FILE)
        files.append(out / ONNX_FILE)
    if config is not None:
        write_json(out / CONFIG_FILE, config)
        files.append(out / CONFIG_FILE)
    return ExportResult(tuple(map(str, files)), diff)


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


def timm_pretrained_config(spec: ArchSpec, dataset: str) -> dict[str, Any]:
    """timm's Hub ``config.json`` layout for ``spec``, with the spec itself under ``spec``.

    Normalisation and crop come from the dataset preset the network was trained with;
    ``fixed_input_size`` because ReLU counts (and neuron masks) hold for the spec's size.
    """
    from ..tables import dataset_preset

    preset = dataset_preset(dataset)
    if preset["in_chans"] != spec.in_chans:
        raise ReshapeError(f"{dataset} images have {preset['in_chans']} channels but the network takes "
                           f"{spec.in_chans}: its mean/std would not fit; pass the --dataset it was trained on")
    return {
        "architecture": "reshape_spec",
        "num_classes": spec.num_classes,
        "num_features": spec.stages[-1].width * EXPANSION[spec.block],
        "global_pool": "avg",
        "pretrained_cfg": {
            "input_size": [spec.in_chans, spec.input_size, spec.input_size],
            "fixed_input_size": True,
            "mean": preset["mean"],
            "std": preset["std"],
            "crop_pct": preset["augment"].get("crop_pct", 1.0),
            "interpolation": "bilinear",
            "num_classes": spec.num_classes,
            "first_conv": "conv1",
            "classifier": "fc",
            "dataset": dataset,
        },
        "spec": spec.to_dict(),
    }
