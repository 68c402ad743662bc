"""Issue 15, finding 2 and the ownership audit: no command takes a run it did not write as
its result, and none writes into another command's or another configuration's folder.

Every case runs the real command line on a tiny teacher (width 4, 256 images, 1 epoch)
and checks the refusal (exit 1, one line naming the folder and what differs, how to
start fresh) and that the folder it was pointed at is byte-for-byte unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reshape.cli import cli

DATA = ["--data", "fashion-mnist-mini"]
FAST = ["--epochs", "2", "--batch-size", "64", "--limit", "256"]


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def files(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes: what "left unchanged" compares."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(Path(path).rglob("*")) if p.is_file()}


def refused(res, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and res.output.count("\n") == 1, res.output
    for needle in needles:
        assert needle in res.output, (needle, res.output)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two teachers (seeds 0 and 1) and a finished SENet and SNL run from the first."""
    root = tmp_path_factory.mktemp("own")
    made = {"teacher": root / "teacher", "teacher2": root / "teacher2", "senet": root / "senet", "snl": root / "snl"}
    for name, seed in (("teacher", "0"), ("teacher2", "1")):
        res = run("train", "resnet18", *DATA, "--width", "4", *FAST, "--seed", seed, "--out", made[name])
        assert res.exit_code == 0, res.output
    for method in ("senet", "snl"):
        res = run(method, made["teacher"], *DATA, "--budget", "2k", *FAST, "--out", made[method])
        assert res.exit_code == 0, res.output
    return made


METHODS = {
    "senet": ["senet", "{teacher}", *DATA, "--budget", "2k", *FAST],
    "snl": ["snl", "{teacher}", *DATA, "--budget", "2k", *FAST],
    "shallow": ["shallow", "{teacher}", *DATA, "--relus", "0.7", "--mode", "exact", *FAST],
}


def method_args(method: str, runs: dict[str, Path], teacher: str = "teacher") -> list[str]:
    return [str(runs[teacher]) if a == "{teacher}" else a for a in METHODS[method]]


@pytest.mark.parametrize("method, target", [(m, t) for m in METHODS for t in ("teacher", "teacher2", "senet", "snl")
                                            if m != t])  # the same method and settings is a read-back
def test_a_method_never_reports_a_finished_run_it_did_not_write(runs, method, target):
    """Regression: `senet TEACHER --out ANY_FINISHED_RUN` (the teacher too) reported that run
    with exit 0 and wrote senet.json and locate/ into it; `shallow --mode exact` overwrote a
    training run's weights, metrics, spec and config."""
    before = files(runs[target])
    res = run(*method_args(method, runs), "--out", runs[target])
    refused(res, str(runs[target]), "new --out")
    assert files(runs[target]) == before


@pytest.mark.parametrize("method, change, option", [
    ("senet", ["--allocation", "uniform"], "--allocation"),
    ("senet", ["--granularity", "channel"], "--granularity"),
    ("senet", ["--lr", "0.01"], "--lr"),
    ("senet", "teacher2", "teacher"),
    ("snl", ["--lambda", "1e-3"], "--lambda"),
    ("snl", ["--granularity", "channel"], "--granularity"),
    ("snl", ["--lr", "0.01"], "--lr"),
    ("snl", "teacher2", "teacher"),
])
def test_a_rerun_with_another_option_is_refused_naming_it(runs, method, change, option):
    """Regression: a rerun with another --allocation, --granularity, --lr or teacher into
    the same --out returned the old result while printing the new options."""
    before = files(runs[method])
    if change == "teacher2":
        args = method_args(method, runs, "teacher2")
    else:
        args = [*method_args(method, runs), *change]
    res = run(*args, "--out", runs[method])
    refused(res, str(runs[method]), f"({option}", "--force", "new --out")
    assert files(runs[method]) == before


def test_a_rerun_with_the_same_options_reads_the_result_back(runs):
    before = files(runs["senet"])
    res = run(*method_args("senet", runs), "--out", runs["senet"], "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["cached"] and files(runs["senet"]) == before


#: Every other command that writes, pointed at a run directory it did not write
#: (``{run}``: the finished SENet run). Each must refuse before it writes anything.
WRITERS = {
    "train": ["train", "resnet18", *DATA, "--width", "4", *FAST, "--out", "{run}"],
    "export": ["export", "{teacher}", "--out", "{run}"],
    "export-itself": ["export", "{run}", "--out", "{run}", "--force"],
    "synthesize-sweep": ["synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--sweep", "50k,100k",
                         "--out", "{run}"],
    "synthesize-file": ["synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--relus", "50k",
                        "--out", "{run}/spec.json"],
    "synthesize-dir": ["synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--relus", "50k",
                       "--out", "{run}"],
    "pareto": ["pareto", "{run}", "--dataset", "fashion-mnist-mini", "--out", "{run}/front.png"],
    "criticality-out": ["criticality", "resnet18", *DATA, "--width", "4", *FAST, "--out", "{run}/crit.json"],
    "criticality-cache": ["criticality", "resnet18", *DATA, "--width", "4", *FAST, "--cache", "{run}"],
    "search": ["search", "--space", "hybrenet", *DATA, "--budgets", "10k", "--trials", "1",
               "--storage", "journal:{tmp}/s.log", "--study", "s", "--epochs", "1", "--limit", "64", "--out", "{run}"],
    "frontier": ["frontier", "{teacher}", "--methods", "width", "--budgets", "10%", "--epochs", "1",
                 "--limit", "256", "--out", "{run}"],
    "demo": ["demo", "--quick", "--out", "{run}"],
}
#: A folder where a file is expected is a bad option value (exit 2, click's usage error naming
#: --out), checked before anything runs; every other refusal is about the run's state (exit 1).
USAGE = {"synthesize-dir"}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_no_command_writes_into_a_run_it_does_not_own(runs, tmp_path, writer):
    before = files(runs["senet"])
    args = [a.replace("{run}", str(runs["senet"])).replace("{teacher}", str(runs["teacher"]))
             .replace("{tmp}", str(tmp_path)) for a in WRITERS[writer]]
    res = run(*args)
    if writer in USAGE:
        assert res.exit_code == 2 and "Invalid value for --out" in res.output and str(runs["senet"]) in res.output
    else:
        refused(res, str(runs["senet"]))
    assert files(runs["senet"]) == before


def test_an_export_folder_is_owned(runs, tmp_path):
    out = tmp_path / "export"
    base = ["export", runs["teacher"], "--out", out]
    assert run(*base).exit_code == 0
    manifest = json.loads((out / "run.json").read_text())
    assert (manifest["method"], manifest["status"]) == ("export", "done")
    assert run(*base).exit_code == 0  # the same export again: rewritten, same files
    before = files(out)
    refused(run("export", runs["teacher2"], "--out", out), "RUN_DIR (weights digest)", "--force")
    refused(run(*base, "--timm-config"), "--timm-config", "--force")
    assert files(out) == before
    assert run("export", runs["teacher2"], "--out", out, "--force").exit_code == 0
    assert files(out)["model.safetensors"] == (runs["teacher2"] / "model.safetensors").read_bytes()


def test_a_synthesize_sweep_folder_is_owned(tmp_path):
    out = tmp_path / "specs"
    base = ["synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--out", out]
    assert run(*base, "--sweep", "50k,100k").exit_code == 0
    assert run(*base, "--sweep", "50k,100k").exit_code == 0  # a rerun (the demo's) rewrites the same specs
    before = files(out)
    refused(run(*base, "--sweep", "50k,180k"), "--sweep", "--force")
    assert files(out) == before
    assert run(*base, "--sweep", "50k,180k", "--force").exit_code == 0
    assert sorted(p.name for p in out.glob("resnet18-*.json")) == ["resnet18-cifar100-180000.json",
                                                                  "resnet18-cifar100-50000.json"]


def test_a_file_output_may_replace_a_plain_file(tmp_path):
    target = tmp_path / "hrn.json"
    target.write_text("old")
    res = run("synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--relus", "50k", "--out", target)
    assert res.exit_code == 0, res.output
    assert json.loads(target.read_text())["stages"]
