"""``reshape demo``: a small accuracy-vs-ReLU frontier on the packaged data, the HybReNet it
chooses exported, and the figure and answer a user comes for (``reshape.demo.run_demo``)."""
from __future__ import annotations

import click

from reshape.report import run_views

from ._common import OutPath, user_errors


@click.command("demo")
@click.option("--out", default="demo-out", show_default=True, type=OutPath(directory=True),
              help="Folder for the teacher, the frontier, the export, front.png and summary.md.")
@click.option("--quick", is_flag=True,
              help="A seconds-long smoke run (width-4 teacher, 256 images, 1-epoch bases).")
@click.option("--force", is_flag=True,
              help="Delete the demo's teacher, frontier and export in --out and start over (e.g. a full "
                   "demo where a --quick one ran).")
@user_errors
def command(out: str, quick: bool, force: bool) -> None:
    """Train a teacher on the packaged Fashion-MNIST subset, fit it to 5% and 33% of its ReLUs
    with every method under equal training, export the best HybReNet and draw the front it sits on.

    \b
    1. the teacher: resnet18 --width 8 on 2,000 images, 500 more held out for validation;
    2. the frontier (as `reshape frontier`) at 5% and 33% of its ReLUs: the synthesized
       HybReNet, HybReNet bases reduced by SNL or SENet, and their baselines SNL, SENet
       and DeepReDuce, each with the teacher's training plus 2 student epochs, its
       image-passes, exact ReLUs, top-1, MACs and DELPHI latency;
    3. reshape synthesize for CIFAR-100 at 25k-180k ReLUs, beside the published results;
    4. reshape export of the most accurate HybReNet (spec, safetensors, ONNX checked
       against PyTorch, timm config) into OUT/export/, with a README to rebuild it;
    5. OUT/front.png and OUT/summary.md: the best network per budget, each pair (ours -
       baseline, with its standard error) and the command behind every row.

    Every step resumes: a rerun reads back what is done and finishes what a kill
    interrupted. Takes about 3 minutes on 2 CPU cores.

    \b
    Examples:
      reshape demo                      # writes demo-out/
      reshape demo --quick --out /tmp/d # a smoke run
      reshape demo --force              # start demo-out/ over (other settings were run there)
    """
    from rich.console import Console

    from reshape.demo import run_demo

    console = Console(stderr=True)
    done = run_demo(out, quick=quick, force=force, say=lambda line: console.print(line, highlight=False, markup=False))
    console.print(run_views.demo_line(done))
