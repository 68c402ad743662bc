"""``reshape export``: a trained run as spec + safetensors, ONNX and a timm config."""
from __future__ import annotations

import click

from reshape.report import run_views

from ._common import RUN_DIR, Dataset, OutPath, emit, name_params, user_errors


@click.command("export")
@click.argument("run_dir", type=RUN_DIR)
@click.option("--out", required=True, type=OutPath(directory=True), help="Folder to write into.")
@click.option("--onnx", is_flag=True,
              help="Also write model.onnx (opset 17, dynamic batch), checked against PyTorch with onnxruntime.")
@click.option("--timm-config", is_flag=True,
              help="Also write timm's config.json with timm's own writer (save_for_hf): the spec as "
                   "model_args, the dataset's mean/std; timm.create_model('local-dir:OUT') rebuilds it.")
@click.option("--dataset", type=Dataset(), help="Dataset for the config's mean/std (default: the one the run was trained on).")
@click.option("--force", is_flag=True, help="Start --out over if it holds another export or run (deletes it).")
@click.option("--json", "as_json", is_flag=True, help="Print the written files (and ONNX difference) as JSON.")
@user_errors
def command(run_dir: str, out: str, onnx: bool, timm_config: bool, dataset: str | None, force: bool,
            as_json: bool) -> None:
    """Export the trained network in RUN_DIR to the folder --out.

    Writes spec.json (the architecture) and model.safetensors (weights and ReLU masks);
    --onnx adds model.onnx, verified right after export (max |ONNX - PyTorch| <= 1e-4);
    --timm-config adds config.json, written with model.safetensors by timm's own
    writer. --out is owned (run.json): the same export again rewrites it; another
    run's export or any other run there is refused (--force starts it over).
    Rebuild with timm, weights loaded:

    \b
      import reshape.models, timm    # registers reshape_spec in timm
      model = timm.create_model("local-dir:DIR", pretrained=True)

    \b
    Examples:
      reshape export runs/senet-50k --out export/senet-50k --onnx --timm-config
      reshape export runs/teacher --out export/teacher --json
    """
    from reshape.report.export import export

    name_params({"weights": "RUN_DIR (weights digest)", "timm_config": "--timm-config", "onnx": "--onnx"})
    result = export(run_dir, out, onnx=onnx, timm_config=timm_config, dataset=dataset, force=force)
    emit(as_json, {"files": list(result.files), "onnx_max_diff": result.onnx_max_diff},
         run_views.export_lines(result))
