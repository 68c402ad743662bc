"""reshape.frontier, `reshape frontier` / `reshape methods`, and the benchmark's presets and goals.

One tiny teacher (ResNet18 at width 4 on 256 fashion-mnist-mini images, 1 epoch) and one
frontier (width and DeepReDuce at 10% and 50% of its ReLUs) are trained once per module;
width cannot reach 10% (below its width-1 network), so the unreachable path is covered too.
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
from reshape.methods import Setting, list_methods
from reshape.models import spec_for
from reshape.report.frontier import write_frontier
from reshape.runs import WEIGHTS_FILE, summarize
from reshape.train import fit

DATA = "fashion-mnist-mini"
METHODS = ["width", "deepreduce"]
BUDGETS = [0.1, 0.5]
SETTING = Setting(data=DATA, limit=256, epochs=1, batch_size=64, progress=False)
#: The module frontier's point that trains after another one (deepreduce at 10% runs before it).
LATE_POINT = ("width", "50pct")
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
    fit(out, spec_for("resnet18", DATA, 4), setting.config(1, 0.1), setting.splits(), progress=False)
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
    assert (out / "width" / "10pct" / UNREACHABLE_FILE).is_file()
    for row in result.points[1:]:
        assert row["reachable"] and row["relus"] <= row["budget"] == int(row["fraction"] * 27_136)
        assert 0 <= row["top1"] <= 1 and row["family"] == "baseline" and not row["cached"]
        assert summarize(row["run"])["method"] == row["method"]  # each point is a run directory of its method
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
    assert list(table[0]) == ["method", "family", "budget", "fraction", "relus", "macs", "top1",
                              "delphi_online_s", "delphi_total_s", "cheetah_online_s", "cheetah_total_s", "run"]
    assert [r["method"] for r in table] == ["teacher", "deepreduce", "width", "deepreduce"]  # unreachable left out
    assert float(table[1]["top1"]) == pytest.approx(100 * result.rows[2]["top1"], abs=0.01)
    markdown = (out / "results.md").read_text()
    assert "| width | baseline | 2,713 (10%) | - | unreachable |" in markdown
    assert "width at 10pct: budget 2,713 is below" in markdown
    assert (out / "frontier.png").stat().st_size > 10_000
    assert json.loads((out / SETTING_FILE).read_text())["budgets"] == ["10pct", "50pct"]


def test_rerun_reads_every_point_back_without_training(frontier, teacher, monkeypatch):
    result, _ = frontier

    def no_training(*args, **kwargs):
        raise AssertionError("a finished frontier point trained again")

    monkeypatch.setattr("reshape.train._fit.train", no_training)
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
    with pytest.raises(ReshapeError, match=r"setting\.limit: 256 -> 128"):
        run_frontier(result.teacher["run"], METHODS, BUDGETS, dataclasses.replace(SETTING, limit=128), result.out)
    with pytest.raises(ReshapeError, match=r"params\.width\.lr: 0\.1 -> 0\.05"):
        run_frontier(result.teacher["run"], METHODS, BUDGETS, SETTING, result.out, {"width": {"lr": "0.05"}})
    foreign = tmp_path_factory.mktemp("foreign")
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ReshapeError, match="not a frontier"):
        run_frontier(result.teacher["run"], METHODS, BUDGETS, SETTING, foreign, force=True)
    assert (foreign / "notes.txt").is_file()


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
    assert "deepreduce at 50pct:" in res.output and "(read back)" in res.output
    lines = [ln for ln in (result.out / "results.md").read_text().splitlines() if ln.startswith("| ")]
    assert len(lines) == 1 + 1 + len(METHODS) * len(BUDGETS)  # header, teacher, points
    assert {ln.count("|") - 1 for ln in lines} == {11}  # 11 columns in every row (online and total s per profile)
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
    (["--set", "deepreduce.lr=0.1"], "'deepreduce', which is not in --methods"),
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
def row(method: str, fraction: float, relus: int, top1: float, family: str = "ours", macs: int = 7_000_000) -> dict:
    return {"method": method, "family": family, "fraction": fraction, "relus": relus, "top1": top1,
            "reachable": True, "macs": macs}


def test_presets_fill_only_what_was_not_given():
    quick = bench.parse(["--quick", "--epochs", "4"])
    assert (quick.width, quick.limit, quick.teacher_epochs, quick.epochs) == (8, 6000, 6, 4)
    assert quick.work == "runs/frontier-quick"
    registered = [m for m in bench.METHODS if m in list_methods()]
    assert quick.methods == registered and quick.skipped == [m for m in bench.METHODS if m not in registered]
    full = bench.parse([])
    assert (full.width, full.limit, full.epochs, full.work) == (16, None, 8, "runs/frontier")
    medium = bench.parse(["--preset", "medium"])
    assert (medium.width, medium.limit, medium.teacher_epochs, medium.epochs) == (8, 12000, 8, 4)
    assert medium.work == "runs/frontier-medium"
    assert full.fractions == [0.02, 0.05, 0.1, 0.25, 0.5]


def test_short_run_params_go_to_the_chosen_methods_only():
    assert bench.parse(["--methods", "width,deepreduce"]).params == {}
    args = bench.parse(["--methods", "width", "--set", "width.lr=0.05"])
    assert args.params == {"width": {"lr": "0.05"}}
    chosen = [m for m in ("snl", "senet") if m in list_methods()]
    if chosen:  # once SNL / SENet are registered, their short-run params reach them
        args = bench.parse(["--methods", ",".join(chosen)])
        assert args.params == {m: bench.OVERRIDES[m] for m in chosen}


@pytest.mark.parametrize("argv", [["--methods", "width,magic"], ["--epochs", "1"], ["--fractions", "a,b"],
                                  ["--methods", "width", "--set", "snl.lam=1"]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.parse(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_goals_compare_the_best_of_ours_with_snl():
    rows = [row("snl", 0.1, 1000, 0.700, "baseline"), row("senet", 0.1, 1000, 0.705),
            row("shallow_senet", 0.1, 1000, 0.712),
            row("deepreduce", 0.1, 900, 0.90, "baseline"),  # a baseline never counts as ours
            row("snl", 0.05, 500, 0.650, "baseline"), row("senet", 0.05, 500, 0.640),
            {"method": "hybrenet_senet", "family": "ours", "fraction": 0.05, "reachable": False, "why": "too small"}]
    lines = bench.goals(rows)
    # 10%: best of ours 71.2 vs SNL 70.0 -> +1.20 met; half of 1,000 is 500: senet 64.0 < 70.0
    assert lines[0].startswith("10%: best of ours shallow_senet 71.20% vs SNL 70.00% -> +1.20 points")
    assert lines[0].endswith("(goal >= +1: met)")
    assert "senet 64.00% at 500 (goal: NOT met)" in lines[1]
    # ... and against DeepReDuce's 90.0: 71.2 - 90.0 = -18.80
    assert lines[2].strip().startswith("DeepReDuce 90.00% at 900 ReLUs (7.00M MACs)")
    assert lines[2].endswith("-18.80 points (goal >= DeepReDuce: NOT met)")
    # 5%: 64.0 vs 65.0 -> -1.00 not met; nothing of ours at <= 250 ReLUs; no DeepReDuce point there
    assert lines[3].endswith("-1.00 points (goal >= +1: NOT met)")
    assert lines[4].strip().startswith("no point of ours at <= half of SNL's 500 ReLUs")
    assert lines[5].strip() == "no DeepReDuce point or none of ours at 5%: DeepReDuce goal not measured"
    assert bench.goals(rows[2:4]) == ["no SNL point: the goals against SNL are not measured"]


# -- a frontier shared by workers (reshape.search.frontier) ---------------------------------------
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
    """results.json without what differs between two runs of the same points: wall seconds,
    the command and machine, and the folder (run paths are taken relative to it)."""
    out = str(Path(saved["rows"][1]["run"]).parent.parent)
    rows = [{**r, "seconds": None, "run": r["run"].replace(out, "OUT")} for r in saved["rows"]]
    return {"setting": saved["setting"], "rows": rows}


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
        for a, b in [(frontier[0].out / "deepreduce" / label, out / "deepreduce" / label)]:
            assert all(torch.equal(x, load_file(b / WEIGHTS_FILE)[k])
                       for k, x in load_file(a / WEIGHTS_FILE).items())
    assert (out / "results.md").is_file() and (out / "frontier.png").is_file()


def test_a_killed_workers_point_resumes_from_its_checkpoint(teacher, tmp_path, stop_after):
    storage, out = f"journal:{tmp_path / 'frontier.log'}", tmp_path / "f"
    two_epochs = ["--methods", "deepreduce", "--budgets", "50%", "--epochs", "2"]
    worker = _frontier_worker(teacher, out, storage, tmp_path / "worker.log", *two_epochs)
    stop_after(worker)
    checkpoint = out / "deepreduce" / "50pct" / "checkpoint.pt"
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
    assert len(rows) == 2 and rows[0] == first_epoch  # epoch 1 kept, only epoch 2 trained again


def test_frontier_storage_options(teacher, tmp_path, monkeypatch):
    res = invoke("frontier", str(teacher), *CLI_ARGS, "--out", str(tmp_path / "f"), "--worker")
    assert res.exit_code == 2 and "--worker takes points from a --storage" in res.output
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now raises ImportError
    url = "postgresql://me@db.invalid/optuna"
    res = invoke("frontier", str(teacher), *CLI_ARGS, "--out", str(tmp_path / "f"), "--storage", url)
    assert res.exit_code == 1 and res.output == (
        f"error: cannot open storage '{url}': the postgresql driver (psycopg) is not installed; "
        "pip install 'reshape[postgres]'\n")
