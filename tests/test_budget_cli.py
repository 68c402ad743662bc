"""reshape sensitivity / senet / snl end to end on the packaged real data (fashion-mnist-mini)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reshape.cli import cli

DATA = ["--data", "fashion-mnist-mini"]
FAST = ["--epochs", "1", "--batch-size", "128", "--limit", "512"]


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


@pytest.mark.parametrize("method, extra", [("senet", []), ("snl", ["--lambda", "1e-3"])])
def test_methods_meet_the_budget_exactly(teacher, tmp_path, method, extra):
    out = tmp_path / method
    res = run(method, teacher, *DATA, "--budget", "2k", *FAST, *extra, "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert result["relus"] == 2000 and 0 <= result["top1"] <= 1
    counted = json.loads(run("count", str(out), "--json").output)
    assert counted["relus"] == 2000


@pytest.mark.parametrize("args, message", [
    (["--budget", "0"], "at least 1"),
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
