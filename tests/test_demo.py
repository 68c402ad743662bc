"""The main job end to end, in its quick form: every step runs and the summary adds up."""
from __future__ import annotations

from click.testing import CliRunner

from reshape.cli import cli
from reshape.accounting import count
from reshape.runs import load_run, summarize


def test_quick_demo_runs_every_step(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = (out / "summary.md").read_text()
    assert (out / "front.png").stat().st_size > 10_000
    assert len(list((out / "specs").glob("resnet18-cifar100-*.json"))) == 3
    spec, teacher = load_run(out / "teacher")
    shape = spec.input_shape
    budget = count(teacher, shape).relus // 10
    for method in ("senet", "snl"):
        s, m = load_run(out / method)
        assert count(m, shape).relus == budget
        assert f"| {method} | {summarize(out / method)['label']} | {budget:,} |" in summary
    s, m = load_run(out / "shallow")
    assert count(m, shape).relus < count(teacher, shape).relus
    assert "$ reshape senet" in summary and "$ reshape pareto" in summary
