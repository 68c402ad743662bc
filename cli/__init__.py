"""The ``reshape`` command line.

Subcommands load lazily: ``reshape --help`` imports click only, and each command
imports torch/timm when it runs. To add a command, write ``cli/<name>.py`` with a
click command called ``command`` and list it in ``COMMANDS``.

``main`` first sets OpenMP up for a machine that others share (``configure_threads``):
that has to happen before torch is imported, which is why it lives here.
"""
from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path
from typing import MutableMapping

import click

from reshape._version import __version__

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
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"reshape.cli.{COMMANDS[name][0]}")
        return module.command

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
    """


#: cgroup files holding a CPU quota: v2 ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD"), v1 quota and period.
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def available_cpus() -> int:
    """The CPUs this process may actually use: its affinity mask, capped by a cgroup CPU quota.

    ``os.cpu_count()`` (and OpenMP's default) counts the machine, not a container's or a
    ``taskset``'s share; threads beyond the share only queue for it.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = _CGROUP_V2.read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota, period = (f.read_text().strip() for f in _CGROUP_V1)
        except (OSError, ValueError):
            return max(1, cpus)
    if quota not in ("max", "-1") and int(period) > 0:
        cpus = min(cpus, math.ceil(int(quota) / int(period)))
    return max(1, cpus)


def configure_threads(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set OpenMP for a shared machine unless the user chose: returns what it set.

    ``OMP_WAIT_POLICY=PASSIVE``: an idle OpenMP thread sleeps instead of spinning, so
    PyTorch's threads stop burning the CPU time other jobs (and its own other threads)
    need; on a loaded 2-core machine spinning threads cut training to a few percent of
    its speed. ``OMP_NUM_THREADS``: the CPUs actually available (``available_cpus``).
    libgomp reads both once, when torch loads it, so this runs before torch is imported
    and does nothing when torch is already loaded (reshape called from inside another
    program, which has made its own choice). A variable the user set is left alone.
    """
    if "torch" in sys.modules:
        return {}
    chosen = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(available_cpus())}
    chosen = {k: v for k, v in chosen.items() if not environ.get(k)}
    environ.update(chosen)
    return chosen


def main() -> None:
    configure_threads()
    cli()
