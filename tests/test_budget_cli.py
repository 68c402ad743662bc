"""reshape sensitivity / senet / snl end to end on the packaged real data (fashion-mnist-mini)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reshape.cli import cli

DATA = ["--data", "fashion-mnist-mini"]
FAST = ["--epochs", "2", "--batch-size", "128", "--limit", "512"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "teacher"
    res = run("train", "resnet18", *DATA, "--width", "4", *FAST, "--out", str(out))
    assert res.exit_code == 0, res.output
    return str(out)


def test_sensitivity_allocation_sums_to_budget(teacher):
    res = run("sensitivity", teacher, *DATA, "--budget", "2k", "--json")
    assert res.exit_code == 0, res.output
    layers = json.loads(res.output)["layers"]
    assert sum(l["relus"] for l in layers) == 2000
    assert all(0 <= l["relus"] <= l["size"] for l in layers)
    table = json.loads(res.output)
    assert (table["estimator"], table["ranking"]) == ("criticality", [4, 1, 2, 3])  # the dataset's ranking
    assert sum(table["per_stage"].values()) == 2000


def test_the_cli_offers_every_estimator():
    from reshape.budget.sensitivity import ESTIMATORS
    from reshape.cli._params import ESTIMATORS as OFFERED

    assert set(OFFERED) == set(ESTIMATORS)


def test_senet_prints_the_plans_split_over_the_stages(teacher, tmp_path):
    args = ["senet", teacher, *DATA, "--budget", "2k", *FAST, "--ranking", "1,4,2,3", "--out", str(tmp_path / "s")]
    for _ in range(2):  # trained, then read back: the same line
        res = run(*args)
        assert res.exit_code == 0, res.output
        line = next(l for l in res.output.splitlines() if l.startswith("ReLUs per stage: "))
        counts = [int(part.split()[1].replace(",", "")) for part in line.split(": ")[1].split("  ")]
        assert line.split(": ")[1].startswith("stem ") and sum(counts) == 2000
    plan = json.loads((tmp_path / "s" / "senet.json").read_text())
    assert plan["ranking"] == [1, 4, 2, 3]


@pytest.mark.parametrize("method, extra", [("senet", []), ("snl", ["--lambda", "1e-3"])])
def test_methods_meet_the_budget_exactly(teacher, tmp_path, method, extra):
    out = tmp_path / method
    res = run(method, teacher, *DATA, "--budget", "2k", *FAST, *extra, "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert result["relus"] == 2000 and 0 <= result["top1"] <= 1
    counted = json.loads(run("count", str(out), "--json").output)
    assert counted["relus"] == 2000


def test_a_zero_budget_is_a_usage_error(teacher, tmp_path):
    """A value wrong by itself exits 2 before anything runs (docs/architecture.md, exit codes)."""
    res = run("senet", teacher, "--out", str(tmp_path / "x"), *FAST, *DATA, "--budget", "0")
    assert res.exit_code == 2 and "'--budget': must be at least 1" in res.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [
    (["--budget", "10M"], "exceeds the teacher's"),
    (["--budget", "1k", "--data", "mnist"], None),
])
def test_bad_budgets_and_data(teacher, tmp_path, args, message):
    base = ["senet", teacher, "--out", str(tmp_path / "x"), *FAST]
    if "--data" not in args:
        base += DATA
    res = run(*base, *args)
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    if message:
        assert message in res.output
    else:  # a teacher trained on another dataset
        assert "fashion-mnist-mini" in res.output or "mnist" in res.output


@pytest.mark.parametrize("method, first, changed, name, redone", [
    ("senet", [], ["--allocation", "uniform", "--granularity", "channel"], "allocation",
     {"allocation": "uniform", "granularity": "channel"}),
    ("senet", [], ["--epochs", "4"], "--epochs: 2 -> 4", {}),
    ("snl", ["--lambda", "1e-3"], ["--lambda", "1e-2"], "lam", {"lam": 1e-2}),
])
def test_rerun_with_other_params_is_refused_not_read_back(teacher, tmp_path, method, first, changed, name, redone):
    """Regression: the stage caches used to return the first run's result for new settings."""
    out = str(tmp_path / method)
    args = [method, teacher, *DATA, "--budget", "2k", *FAST, "--out", out]
    assert run(*args, *first).exit_code == 0
    res = run(*args, *changed)
    assert res.exit_code == 1 and name in res.output and "--force" in res.output, res.output
    res = run(*args, *first, *changed, "--force", "--json")
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert not result["cached"] and redone.items() <= result["params"].items()


def test_a_finished_run_is_read_back_and_uniform_is_its_own_method(teacher, tmp_path):
    args = ["senet", teacher, *DATA, "--budget", "2k", *FAST, "--allocation", "uniform",
            "--out", str(tmp_path / "u"), "--json"]
    res = run(*args)
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert (result["method"], result["family"], result["cached"]) == ("senet_uniform", "baseline", False)
    again = json.loads(run(*args).output)
    assert again["cached"] and again["relus"] == result["relus"] and again["top1"] == result["top1"]


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_the_teacher_folder_is_refused_as_out_and_left_unchanged(teacher, force):
    before = {p: p.read_bytes() for p in sorted(Path(teacher).rglob("*")) if p.is_file()}
    res = run("senet", teacher, *DATA, "--budget", "2k", *FAST, "--out", teacher, *force)
    assert res.exit_code == 1 and "Traceback" not in res.output and teacher in res.output, res.output
    assert {p: p.read_bytes() for p in sorted(Path(teacher).rglob("*")) if p.is_file()} == before
