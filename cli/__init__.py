"""The ``reshape`` command line: ``main`` sets OpenMP up for a shared machine
(``reshape.threads``), then each command module loads only when it runs, so ``reshape
--help`` imports click alone. A command is ``cli/<name>.py`` with a click ``command``,
listed in ``COMMANDS``.
"""
from __future__ import annotations

import importlib

import click

from reshape._version import __version__
from reshape.threads import configure_threads

#: name -> (module under reshape.cli, one-line help shown by ``reshape --help``), in pipeline order
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "The main job: HybReNets and baselines at two ReLU budgets on the packaged data, export, figure."),
    "count": ("count", "Count ReLUs, MACs, params and PI cost of a model, spec or run."),
    "graph": ("graph", "List the residual blocks of a model with their ReLUs and MACs (torch.fx IR)."),
    "synthesize": ("synthesize", "Synthesize a HybReNet spec for a ReLU (and MAC) budget, DeepReShape rules."),
    "criticality": ("criticality", "Stage criticality of a backbone: short trainings with ReLUs in one stage only."),
    "train": ("train", "Train a model or spec on a dataset, with KD, checkpoints and resume."),
    "eval": ("eval", "Top-1/top-5 accuracy and ReLU count of a trained run directory."),
    "sensitivity": ("sensitivity", "Per-layer ReLU sensitivity of a trained run and its allocation for a budget."),
    "senet": ("senet", "SENet: fit a trained network to a ReLU budget (sensitivity, locations, KD)."),
    "snl": ("snl", "SNL baseline: learn ReLU masks with an L1 penalty down to a budget, then fine-tune."),
    "shallow": ("shallow", "Shallow blocks: drop chosen blocks' inner ReLUs by sensitivity and merge each into one conv."),
    "search": ("search", "Optuna search for accurate ReLU-lean networks at several budgets (resumable, shared)."),
    "methods": ("methods", "List the registered methods (width, DeepReDuce, SNL, SENet, ...) with their params."),
    "frontier": ("frontier", "Every chosen method at several ReLU budgets from one teacher: table, CSV and plot."),
    "pareto": ("pareto", "Plot accuracy against ReLU count: our runs, studies or CSVs with Pareto fronts and published results."),
    "measure": ("measure", "Run a network under a real two-party protocol (SecretFlow SPU): measured bytes and seconds."),
    "export": ("export", "Export a trained run: spec, safetensors weights, ONNX (checked with onnxruntime), timm config."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return importlib.import_module(f"reshape.cli.{COMMANDS[name][0]}").command if name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # One-line help without importing every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reshape")
def cli() -> None:
    """Design ReLU-lean networks for private inference (PI).

    Every ReLU costs a garbled circuit in PI, so the ReLU count decides latency and
    communication. reshape counts it exactly, synthesizes networks for a ReLU budget
    and trains them. Run `reshape COMMAND --help` for details.

    A command that writes a run resumes when run again: a finished run is read back,
    an interrupted one continues from its last finished epoch, and one made with other
    settings is refused, naming what differs (--force starts it over).
    """


def main() -> None:
    configure_threads()
    cli()
