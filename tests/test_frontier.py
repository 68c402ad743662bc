"""reshape.frontier, `reshape frontier` / `reshape methods`, and the benchmark's presets and goals.

One tiny teacher (ResNet18 at width 4 on 256 fashion-mnist-mini images, 1 epoch) and one
frontier (width and DeepReDuce at 10% and 50% of its ReLUs) are trained once per module;
width cannot reach 10% (below its width-1 network), so the unreachable path is covered too.
Equal compute, seeds and the paired comparisons have tests of their own in
tests/test_fair.py.
"""
from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from reshape.cli import cli
from reshape.errors import ReshapeError
from reshape.frontier import SETTING_FILE, UNREACHABLE_FILE, Budget, resolve_budgets, run_frontier
from reshape.methods import Setting, list_methods, setting_config, setting_splits
from reshape.models import spec_for
from reshape.report.frontier import write_frontier
from reshape.runs import WEIGHTS_FILE, summarize
from reshape.train import fit

DATA = "fashion-mnist-mini"
METHODS = ["width", "deepreduce"]
BUDGETS = [0.1, 0.5]
SETTING = Setting(data=DATA, limit=256, epochs=1, batch_size=64, progress=False)
#: The module frontier's point that trains after another one (deepreduce at 10% runs before it).
LATE_POINT = ("width", "50pct", "seed0")
#: The CLI arguments that reproduce the module frontier (teacher-epochs, seed, data: defaults).
CLI_ARGS = ["--methods", ",".join(METHODS), "--budgets", "10%,50%", "--limit", "256", "--epochs", "1",
            "--batch-size", "64"]

_FILE = Path(__file__).parent.parent / "benchmarks" / "frontier.py"
_spec = importlib.util.spec_from_file_location("frontier_benchmark", _FILE)
bench = importlib.util.module_from_spec(_spec)
sys.modules["frontier_benchmark"] = bench
_spec.loader.exec_module(bench)


def train_teacher(out: Path, seed: int = 0) -> Path:
    setting = dataclasses.replace(SETTING, seed=seed)
    fit(out, spec_for("resnet18", DATA, 4), setting_config(setting, 1, 0.1), setting_splits(setting), progress=False)
    return out


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    return train_teacher(tmp_path_factory.mktemp("teacher") / "run")


@pytest.fixture(scope="module")
def frontier(teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("frontier") / "out"
    seen = []
    result = run_frontier(teacher, METHODS, BUDGETS, SETTING, out, on_point=seen.append)
    write_frontier(result)
    return result, seen


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


# -- budgets -----------------------------------------------------------------------------------
def test_budgets_are_counts_or_fractions_with_folder_labels():
    assert resolve_budgets([0.05, 1000, 1.0, 0.05], 20_000) == [
        Budget(1000, 0.05, "5pct"), Budget(1000, 0.05, "1000relus"), Budget(20_000, 1.0, "100pct")]
    for bad, message in [(1.5, "not in \\(0, 1\\]"), (0, "positive count"), (True, "ReLU count"),
                         ("5%", "ReLU count"), (1e-6, "below one ReLU")]:
        with pytest.raises(ReshapeError, match=message):
            resolve_budgets([bad], 20_000)
    with pytest.raises(ReshapeError, match="no budgets"):
        resolve_budgets([], 20_000)


# -- one frontier ------------------------------------------------------------------------------
def test_frontier_rows_and_every_output(frontier, teacher):
    result, seen = frontier
    out = result.out
    assert [(r["method"], r["label"]) for r in result.rows] == [
        ("teacher", "teacher"), ("width", "10pct"), ("deepreduce", "10pct"), ("width", "50pct"),
        ("deepreduce", "50pct")]
    assert seen == result.rows  # on_point saw every row, teacher first, as it finished
    teacher_row = result.teacher
    assert teacher_row["relus"] == summarize(teacher)["relus"] == 27_136
    assert teacher_row["top1"] == summarize(teacher)["top1"] is not None
    unreachable = result.rows[1]
    assert not unreachable["reachable"] and "below the narrowest width-scaled network" in unreachable["why"]
    assert (out / "width" / "10pct" / "seed0" / UNREACHABLE_FILE).is_file()
    for row in result.points[1:]:
        assert row["reachable"] and row["relus"] <= row["budget"] == int(row["fraction"] * 27_136)
        assert 0 <= row["top1"] <= 1 and row["family"] == "baseline" and not row["cached"]
        assert summarize(row["run"])["method"] == row["method"]  # each point is a run directory of its method
        # from scratch: the teacher's epoch plus the student's, on the same 256 images (4 steps of 64)
        assert row["compute"]["image_passes"] == 2 * 256 and row["seed"] == 0
    assert [r.method for r in result.results] == ["deepreduce", "width", "deepreduce"]

    saved = json.loads((out / "results.json").read_text())
    # Each run is stored relative to the frontier folder: it resolves from any working directory.
    assert [{**r, "run": None} for r in saved["rows"]] == [{**r, "run": None} for r in result.rows]
    assert [(out / r["run"]).resolve() for r in saved["rows"]] == [Path(r["run"]).resolve() for r in result.rows]
    assert all(not Path(r["run"]).is_absolute() for r in saved["rows"])
    assert saved["machine"]["commit"] and saved["setting"]["epochs"] == 1
    assert saved["setting"]["teacher_digest"] and saved["setting"]["params"]["deepreduce"]["ranking"] == [1, 4, 2, 3]
    with open(out / "results.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == ["method", "family", "seed", "budget", "fraction", "relus", "macs", "top1", "val_top1",
                              "image_passes", "delphi_online_s", "delphi_total_s", "cheetah_online_s",
                              "cheetah_total_s", "run"]
    assert [r["method"] for r in table] == ["teacher", "deepreduce", "width", "deepreduce"]  # unreachable left out
    assert float(table[1]["top1"]) == pytest.approx(100 * result.rows[2]["top1"], abs=0.01)
    markdown = (out / "results.md").read_text()
    assert "| width | baseline | 2,713 (10%) | - | unreachable |" in markdown
    assert "Every row's training agrees within 5%" in markdown
    assert "width at 10pct: budget 2,713 is below" in markdown
    assert (out / "frontier.png").stat().st_size > 10_000
    assert json.loads((out / SETTING_FILE).read_text())["budgets"] == ["10pct", "50pct"]


def test_rerun_reads_every_point_back_without_training(frontier, teacher, monkeypatch):
    result, _ = frontier

    def no_training(*args, **kwargs):
        raise AssertionError("a finished frontier point trained again")

    monkeypatch.setattr("reshape.train._fit.run_epochs", no_training)
    again = run_frontier(teacher, METHODS, BUDGETS, SETTING, result.out)
    assert again.cached and all(r.cached for r in again.results) and len(again.results) == 3
    strip = [{k: v for k, v in r.items() if k != "cached"} for r in result.rows]
    assert [{k: v for k, v in r.items() if k != "cached"} for r in again.rows] == strip


def test_point_alone_or_after_others_has_bit_identical_weights(frontier, teacher, tmp_path):
    result, _ = frontier
    alone = run_frontier(teacher, ["width"], [0.5], SETTING, tmp_path / "alone")
    late = result.out.joinpath(*LATE_POINT, WEIGHTS_FILE)
    mine = Path(alone.points[0]["run"], WEIGHTS_FILE)
    assert mine.read_bytes() == late.read_bytes()
    a, b = load_file(str(mine)), load_file(str(late))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_adding_methods_and_budgets_extends_a_frontier(teacher, tmp_path):
    out = tmp_path / "grow"
    first = run_frontier(teacher, ["width"], [0.5], SETTING, out)
    grown = run_frontier(teacher, ["deepreduce", "width"], [0.5, 0.1], SETTING, out)
    by = {(r["method"], r["label"]): r for r in grown.points}
    assert by["width", "50pct"]["cached"] and by["width", "50pct"]["run"] == first.points[0]["run"]
    assert not by["deepreduce", "50pct"]["cached"] and not by["width", "10pct"]["reachable"]
    record = json.loads((out / SETTING_FILE).read_text())
    assert record["methods"] == ["width", "deepreduce"] and record["budgets"] == ["50pct", "10pct"]
    # the unreachable record is read back too
    assert run_frontier(teacher, ["width"], [0.1], SETTING, out).points[0]["cached"]


def test_another_teacher_setting_or_params_is_refused_before_training(frontier, tmp_path_factory):
    result, _ = frontier
    other = train_teacher(tmp_path_factory.mktemp("other") / "run", seed=1)
    with pytest.raises(ReshapeError, match=r"another teacher or settings \(teacher: .* -> "):
        run_frontier(other, METHODS, BUDGETS, SETTING, result.out)
    res = invoke("frontier", str(other), *CLI_ARGS, "--out", str(result.out))
    assert res.exit_code == 1 and "another teacher or settings (teacher:" in res.output
    with pytest.raises(ReshapeError, match=r"setting\.epochs: 1 -> 2"):
        run_frontier(result.teacher["run"], METHODS, BUDGETS, dataclasses.replace(SETTING, epochs=2), result.out)
    # a teacher trained on other images than the students' cannot give them equal training
    with pytest.raises(ReshapeError, match=r"trained on other images than the students would be \(limit 256 vs 128\)"):
        run_frontier(result.teacher["run"], METHODS, BUDGETS, dataclasses.replace(SETTING, limit=128), result.out)
    with pytest.raises(ReshapeError, match=r"params\.width\.lr: 0\.1 -> 0\.05"):
        run_frontier(result.teacher["run"], METHODS, BUDGETS, SETTING, result.out, {"width": {"lr": "0.05"}})
    foreign = tmp_path_factory.mktemp("foreign")
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ReshapeError, match="not a reshape run of 'frontier'"):
        run_frontier(result.teacher["run"], METHODS, BUDGETS, SETTING, foreign, force=True)
    assert (foreign / "notes.txt").is_file()


def test_a_frontier_without_run_json_is_read_back_and_then_owned(frontier, teacher, tmp_path, monkeypatch):
    """A frontier written before the folder kept a run.json (layout 2 as reshape wrote it until
    then: frontier.json, no run.json) is read back point by point with nothing trained, and from
    then on RunDir owns it; --force on one holding a user's file is refused naming the file,
    and leaves the folder as it was (no run.json either)."""
    import shutil

    from reshape.runs import MANIFEST_FILE, RunDir

    result, _ = frontier
    old = tmp_path / "old"
    shutil.copytree(result.out, old)
    (old / MANIFEST_FILE).unlink()
    (old / "notes.txt").write_text("mine")
    before = sorted(old.rglob("*"))
    with pytest.raises(ReshapeError, match="notes.txt"):
        run_frontier(teacher, METHODS, BUDGETS, SETTING, old, force=True)
    assert sorted(old.rglob("*")) == before
    (old / "notes.txt").unlink()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished frontier point trained again")

    monkeypatch.setattr("reshape.train._fit.run_epochs", no_training)
    again = run_frontier(teacher, METHODS, BUDGETS, SETTING, old)
    assert again.cached and len(again.results) == 3
    strip = [{k: v for k, v in r.items() if k not in ("cached", "run")} for r in result.rows]
    assert [{k: v for k, v in r.items() if k not in ("cached", "run")} for r in again.rows] == strip
    assert RunDir(old).method() == "frontier"


def test_params_must_name_a_chosen_method_and_its_fields(teacher, tmp_path):
    with pytest.raises(ReshapeError, match="'snl', which is not among the methods"):
        run_frontier(teacher, ["width"], [0.5], SETTING, tmp_path, {"snl": {"lam": 1}})
    with pytest.raises(ReshapeError, match="method width has no parameter 'alpha'"):
        run_frontier(teacher, ["width"], [0.5], SETTING, tmp_path, {"width": {"alpha": 1}})
    with pytest.raises(ReshapeError, match="unknown method 'magic'; choose from width, deepreduce"):
        run_frontier(teacher, ["magic"], [0.5], SETTING, tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written


# -- the command line --------------------------------------------------------------------------
def test_cli_reproduces_the_table_shape(frontier, teacher):
    result, _ = frontier
    res = invoke("frontier", str(teacher), *CLI_ARGS, "--out", str(result.out))
    assert res.exit_code == 0, res.output
    assert "deepreduce at 50pct, seed 0:" in res.output and "(read back)" in res.output
    lines = [ln for ln in (result.out / "results.md").read_text().splitlines() if ln.startswith("| ")]
    assert len(lines) == 1 + 1 + len(METHODS) * len(BUDGETS)  # header, teacher, points (no pair of these methods)
    assert {ln.count("|") - 1 for ln in lines} == {13}  # 13 columns in every row (online and total s per profile)
    for row in result.rows:
        assert row["method"] in res.output
    saved = json.loads((result.out / "results.json").read_text())
    assert saved["command"].startswith(f"reshape frontier {teacher} --methods width,deepreduce --budgets 10%,50%")
    res = invoke("frontier", str(teacher), *CLI_ARGS, "--out", str(result.out), "--json")
    assert res.exit_code == 0 and len(json.loads(res.stdout)["rows"]) == 5


@pytest.mark.parametrize("args, message", [
    (["--methods", "width,magic"], "unknown method 'magic'; registered: width, deepreduce"),
    (["--budgets", "10%,lots"], "each entry 'lots' is neither a count"),
    (["--set", "width.lr"], "write METHOD.PARAM=VALUE"),
    (["--set", "deepreduce.lr=0.1"], "'deepreduce', which is not among the methods (width)"),
    (["--seeds", "0,0"], "seed 0 is given twice"),
    (["--seeds", ""], "--seeds: must not be empty"),
    (["--seeds", "0,,1"], "seeds are comma-separated integers"),
    (["--seeds", "-1"], "a seed must be >= 0"),
    (["--set", "width.alpha=1"], "method width has no parameter 'alpha'"),
    (["--set", "width.lr=fast"], "width.lr must be a float"),
])
def test_cli_usage_errors(teacher, tmp_path, args, message):
    base = {"--methods": "width", "--budgets": "50%"}
    given = dict(zip(args[::2], args[1::2]))
    argv = [a for k, v in {**base, **given}.items() for a in (k, v)]
    res = invoke("frontier", str(teacher), *argv, "--epochs", "1", "--out", str(tmp_path / "f"))
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "f").exists()


def test_methods_lists_the_registry_with_params():
    res = invoke("methods")
    assert res.exit_code == 0
    for name in list_methods():
        assert f"{name} (" in res.output
    assert "params: lr=0.1, ranking=1,4,2,3" in res.output
    rows = json.loads(invoke("methods", "--json").stdout)
    assert [r["name"] for r in rows] == list_methods()
    assert rows[0]["family"] == "baseline" and rows[0]["params"] == {"lr": 0.1}


# -- the benchmark: presets and goals (no training) ----------------------------------------------
def test_presets_fill_only_what_was_not_given():
    quick = bench.parse(["--quick", "--epochs", "4"])
    assert (quick.width, quick.limit, quick.val, quick.teacher_epochs, quick.epochs) == (8, 6000, 1000, 4, 4)
    assert quick.work == "runs/frontier-quick" and quick.seeds == (0,) and quick.methods == list(bench.METHODS)
    fair = bench.parse([])
    assert (fair.preset, fair.width, fair.limit, fair.val, fair.teacher_epochs, fair.epochs, fair.work) == (
        "fair", 8, 30000, 5000, 10, 4, "runs/frontier-fair")
    assert fair.seeds == (0, 1, 2) and fair.fractions == [0.33, 0.25, 0.5, 0.1, 0.05]
    assert fair.methods == ["snl", "hybrenet_snl"]
    medium = bench.parse(["--preset", "medium", "--seeds", "4,5"])
    assert (medium.limit, medium.teacher_epochs, medium.seeds) == (12000, 8, (4, 5))


def test_short_run_params_go_to_the_chosen_methods_only():
    assert bench.parse(["--methods", "width,deepreduce"]).params == {}
    args = bench.parse(["--methods", "width", "--set", "width.lr=0.05"])
    assert args.params == {"width": {"lr": "0.05"}}
    args = bench.parse(["--methods", "snl,senet,hybrenet_snl"])
    assert args.params == {"senet": {"ranking": "1,4,2,3"}}  # the rest is the short preset
    # the pipelines' own reducer steps take the same short preset: one recipe per pair
    from reshape.methods import get_method

    assert get_method("hybrenet_snl").params(bench.PRESET).snl == get_method("snl").params(bench.PRESET)
    assert get_method("hybrenet_senet").params(bench.PRESET).senet.at_weight == \
        get_method("senet").params(bench.PRESET).at_weight == 100.0


def test_presets_are_named_in_the_registry():
    from reshape.methods import get_method

    snl = get_method("snl")
    assert list(snl.presets) == ["published", "short"] and snl.params("published") == snl.defaults
    assert (snl.params("short").lam, snl.params("short", lam="1e-3").lam) == (1e-4, 1e-3)
    with pytest.raises(ReshapeError, match="method width has no preset 'short'; it has published"):
        get_method("width").params("short")
    res = invoke("methods")
    assert "presets: published, short" in res.output
    res = invoke("frontier", str(Path(__file__).parent), "--methods", "width,snl", "--budgets", "5%",
                 "--preset", "fast", "--out", "y")
    assert res.exit_code == 2 and "no method among width, snl has a preset 'fast'" in res.output


@pytest.mark.parametrize("argv", [["--methods", "width,magic"], ["--epochs", "1"], ["--fractions", "a,b"],
                                  ["--methods", "width", "--set", "snl.lam=1"], ["--seeds", "1,1"],
                                  ["--seeds", ""]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.parse(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def point(method: str, label: str, fraction: float, seed: int, relus: int, top1: float, passes: int = 1000) -> dict:
    return {"method": method, "family": "ours" if method.startswith("hybrenet") else "baseline", "label": label,
            "budget": relus, "fraction": fraction, "seed": seed, "relus": relus, "macs": 1, "top1": top1,
            "reachable": True, "run": f"{method}/{label}/seed{seed}", "compute": {"image_passes": passes},
            "within_budget": True}


def test_goals_read_the_paired_difference_and_iso_accuracy():
    from reshape.frontier import FrontierResult

    rows = []
    # 33%: hybrenet_snl 2.0 points over snl in every seed, spread 0.1: a win above 1 point and 2 SE
    for seed, (a, b) in enumerate([(0.80, 0.78), (0.81, 0.79), (0.79, 0.77)]):
        rows += [point("snl", "33pct", 0.33, seed, 330, b), point("hybrenet_snl", "33pct", 0.33, seed, 330, a)]
    # 5%: within noise
    for seed, (a, b) in enumerate([(0.60, 0.61), (0.62, 0.60), (0.61, 0.61)]):
        rows += [point("snl", "5pct", 0.05, seed, 50, b), point("hybrenet_snl", "5pct", 0.05, seed, 50, a)]
    result = FrontierResult(Path("f"), "cmd", {}, {}, rows)
    lines = bench.goals(result)
    assert lines[0] == ("33pct: hybrenet_snl - snl = +2.00 points (SE 0.00, 3 seeds, training ratio 1.000): "
                        ">= +1 and > 2 SE")
    assert lines[1].startswith("5pct: hybrenet_snl - snl = +0.33 points") and lines[1].endswith(
        "not a win (not a claim budget)")
    # iso-accuracy: snl's 33% accuracy (78%) lies between hybrenet_snl's 5% (61%) and 33% (80%) points
    assert lines[2].startswith("33pct: hybrenet_snl needs") and "(interpolated)" in lines[2]
    assert lines[-2] == "GOAL HybReNet + SNL vs ResNet18 + SNL: MET"
    assert lines[-1] == "GOAL paired training within 5%: MET for every pair"
    unequal = [{**r, "compute": {"image_passes": 2000}} if r["method"] == "snl" else r for r in rows]
    lines = bench.goals(FrontierResult(Path("f"), "cmd", {}, {}, unequal))
    assert lines[-1].startswith("GOAL paired training within 5%: NOT met: hybrenet_snl/snl at 33pct")
    assert "GOAL HybReNet + SNL vs ResNet18 + SNL: NOT met" in lines  # unequal training wins nothing


# -- a frontier shared by workers (storage=) ------------------------------------------------------
#: Seconds to wait for a worker subprocess: a busy shared machine can take minutes to start one.
WAIT_S = 600


@pytest.fixture
def stop_after():
    """Processes a test started, killed if it fails half-way (none is left behind)."""
    procs: list[subprocess.Popen] = []
    yield procs.append
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _frontier_worker(teacher: Path, out: Path, storage: str, log: Path, *extra: str) -> subprocess.Popen:
    args = ["frontier", str(teacher), *CLI_ARGS, *extra, "--out", str(out), "--storage", storage, "--worker"]
    return subprocess.Popen([sys.executable, "-m", "reshape", *args], stdout=log.open("w"), stderr=subprocess.STDOUT)


def _running(storage: str, proc: subprocess.Popen) -> list:
    """The frontier study's RUNNING trials (none while no process has created it)."""
    from optuna.trial import TrialState

    from reshape.search import open_storage

    while proc.poll() is None:
        names = [s.study_name for s in optuna.get_all_study_summaries(open_storage(storage))]
        if names:
            study = optuna.load_study(study_name=names[0], storage=open_storage(storage))
            return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        time.sleep(0.1)
    return []


def _comparable(saved: dict) -> dict:
    """results.json without what differs between two runs of the same points: wall seconds
    (also per training phase), the command and machine, and the folder (run paths are taken
    relative to it)."""
    out = str(Path(saved["rows"][1]["run"]).parent.parent.parent)

    def same(row: dict) -> dict:
        compute = row.get("compute") or {}
        phases = [{**p, "seconds": None} for p in compute.get("phases", [])]
        return {**row, "seconds": None, "run": row["run"].replace(out, "OUT"),
                "compute": {**compute, "seconds": None, "phases": phases} if compute else compute}

    return {"setting": saved["setting"], "rows": [same(r) for r in saved["rows"]], "pairs": saved["pairs"]}


@pytest.mark.parametrize("backend", ["journal", "postgres"])
def test_workers_sharing_a_storage_give_the_single_process_results(frontier, teacher, tmp_path, backend,
                                                                    request, stop_after):
    storage = (f"journal:{tmp_path / 'frontier.log'}" if backend == "journal"
               else request.getfixturevalue("postgres_url"))
    out = tmp_path / "shared"
    worker = _frontier_worker(teacher, out, storage, tmp_path / "worker.log")
    stop_after(worker)
    deadline = time.monotonic() + WAIT_S
    while not _running(storage, worker) and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker holds a point: the coordinator takes the others
    res = invoke("frontier", str(teacher), *CLI_ARGS, "--out", str(out), "--storage", storage)
    assert res.exit_code == 0, res.output
    assert worker.wait(timeout=WAIT_S) == 0, (tmp_path / "worker.log").read_text()
    # The module frontier as first written (later tests rewrite its results.json as read back).
    single, shared = frontier[0].to_dict(), json.loads((out / "results.json").read_text())
    assert _comparable(shared) == _comparable(single)
    assert [r["cached"] for r in shared["rows"]] == [r["cached"] for r in single["rows"]]
    for label in ("10pct", "50pct"):  # the same networks, not only the same numbers
        for a, b in [(frontier[0].out / "deepreduce" / label / "seed0", out / "deepreduce" / label / "seed0")]:
            assert all(torch.equal(x, load_file(b / WEIGHTS_FILE)[k])
                       for k, x in load_file(a / WEIGHTS_FILE).items())
    assert (out / "results.md").is_file() and (out / "frontier.png").is_file()


def test_alone_and_through_a_journal_one_worker_loop_gives_the_same_points(teacher, tmp_path, monkeypatch):
    """storage=None (an in-memory study) and storage="journal:PATH" run the points through the
    same worker loop and give the same rows and the same weights."""
    import reshape.frontier._worker as loop

    storages, work = [], loop.work

    def spy(plan, storage, *args, **kwargs):
        storages.append(type(storage).__name__)
        return work(plan, storage, *args, **kwargs)

    monkeypatch.setattr(loop, "work", spy)
    alone = run_frontier(teacher, ["deepreduce"], [0.5], SETTING, tmp_path / "alone")
    shared = run_frontier(teacher, ["deepreduce"], [0.5], SETTING, tmp_path / "shared",
                          storage=f"journal:{tmp_path / 'frontier.log'}")
    assert storages == ["NoneType", "JournalStorage"]
    assert _comparable(shared.to_dict()) == _comparable(alone.to_dict())
    a, b = (load_file(str(Path(r.points[0]["run"], WEIGHTS_FILE))) for r in (alone, shared))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_killed_workers_point_resumes_from_its_checkpoint(teacher, tmp_path, stop_after):
    storage, out = f"journal:{tmp_path / 'frontier.log'}", tmp_path / "f"
    two_epochs = ["--methods", "deepreduce", "--budgets", "50%", "--epochs", "2"]
    worker = _frontier_worker(teacher, out, storage, tmp_path / "worker.log", *two_epochs)
    stop_after(worker)
    checkpoint = out / "deepreduce" / "50pct" / "seed0" / "checkpoint.pt"
    deadline = time.monotonic() + WAIT_S
    while worker.poll() is None and not checkpoint.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL, "the worker finished before it could be killed"
    first_epoch = (checkpoint.parent / "metrics.jsonl").read_text().splitlines()[0]
    res = invoke("frontier", str(teacher), *CLI_ARGS, *two_epochs, "--out", str(out), "--storage", storage)
    assert res.exit_code == 0, res.output
    assert "were left running by a dead worker: queued again" in res.output
    rows = (checkpoint.parent / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3 and rows[0] == first_epoch  # epoch 1 kept, epochs 2-3 trained (1 + 2: from scratch)


def test_frontier_storage_options(teacher, tmp_path, monkeypatch):
    res = invoke("frontier", str(teacher), *CLI_ARGS, "--out", str(tmp_path / "f"), "--worker")
    assert res.exit_code == 2 and "--worker takes points from a --storage" in res.output
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now raises ImportError
    url = "postgresql://me@db.invalid/optuna"
    res = invoke("frontier", str(teacher), *CLI_ARGS, "--out", str(tmp_path / "f"), "--storage", url)
    assert res.exit_code == 1 and res.output == (
        f"error: cannot open storage '{url}': the postgresql driver (psycopg) is not installed; "
        "pip install 'reshape[postgres]'\n")
