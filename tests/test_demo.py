"""The main job end to end, in its quick form: killed partway, finished by a rerun, then rerun
once more with nothing left to do (issue 15, finding 1: the demo could not be rerun).

One module fixture runs ``reshape demo --quick`` three times into one folder: interrupted
at its third frontier point (as a kill would), rerun to completion, rerun again.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from reshape.frontier import FrontierPlan
from reshape.cli import cli
from reshape.demo import HYBRENETS, METHODS, run_demo
from reshape.accounting import count, count_spec
from reshape.runs import load_run
from reshape.spec import load_spec

#: Frontier points finished before the first run is interrupted (it dies in the third).
DONE_BEFORE_KILL = 2


def _demo(out: Path):
    return CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out)])


def _untimed(text: str) -> str:
    """summary.md without the line that times this call."""
    return re.sub(r"This call: \d+ s\.", "", text)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    real_point, calls = FrontierPlan.point, []

    def killed(*args, **kwargs):
        calls.append(args)
        if len(calls) > DONE_BEFORE_KILL:
            raise KeyboardInterrupt
        return real_point(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FrontierPlan, "point", killed)
        first = _demo(out)
    finished_early = (out / "summary.md").exists()
    second = _demo(out)
    results = json.loads((out / "frontier" / "results.json").read_text())
    summary = (out / "summary.md").read_text()
    return out, (first, finished_early, second), results, summary


def test_a_demo_killed_partway_finishes_on_rerun(demo):
    out, (first, finished_early, second), results, _ = demo
    assert first.exit_code == 130 and not finished_early, first.output  # interrupted, as a kill leaves it
    assert second.exit_code == 0, second.output
    cached = [row["cached"] for row in results["rows"][1:]]
    assert cached == [True] * DONE_BEFORE_KILL + [False] * (len(cached) - DONE_BEFORE_KILL)


def test_a_finished_demo_reruns_without_training_or_exporting(demo, monkeypatch):
    out, _, results, summary = demo

    def refuse(*args, **kwargs):
        raise AssertionError("a finished demo step ran again")

    monkeypatch.setattr("reshape.train._fit.run_epochs", refuse)
    monkeypatch.setattr("reshape.report.export.export", refuse)
    third = _demo(out)
    assert third.exit_code == 0, third.output
    again = json.loads((out / "frontier" / "results.json").read_text())
    assert all(row["cached"] for row in again["rows"])
    strip = [{k: v for k, v in row.items() if k != "cached"} for row in results["rows"]]
    assert [{k: v for k, v in row.items() if k != "cached"} for row in again["rows"]] == strip
    assert _untimed((out / "summary.md").read_text()) == _untimed(summary)
    assert "read back" in third.output


def test_run_demo_returns_what_it_left_and_reads_it_all_back(demo):
    """The library call behind `reshape demo`: a finished folder is read back, and the result
    names the files and carries the frontier and the CIFAR-100 designs themselves."""
    out, _, results, summary = demo
    said: list[str] = []
    done = run_demo(out, quick=True, say=said.append)
    assert (done.summary, done.figure, done.export) == (out / "summary.md", out / "front.png", out / "export")
    assert done.frontier.cached and [r["relus"] for r in done.frontier.rows] == [r["relus"] for r in results["rows"]]
    assert done.designs.rows == json.loads((out / "cifar100" / "summary.json").read_text())
    assert any(line.startswith("$ reshape train resnet18") for line in said)
    assert any("up to date" in line and "(read back)" in line for line in said)
    assert _untimed(done.summary.read_text()) == _untimed(summary)


def test_the_summarys_teacher_command_reads_the_demos_teacher_back(demo):
    """The demo trains its teacher through the library; the `reshape train` line it prints is the
    same training (same fingerprint), so typing it reads the teacher back."""
    out, _, _, summary = demo
    line = next(x for x in summary.splitlines() if x.startswith("$ reshape train "))
    res = CliRunner().invoke(cli, shlex.split(line)[2:])
    assert res.exit_code == 0, res.output
    assert "read back, nothing trained" in res.output


def test_a_demo_of_other_settings_is_refused_naming_force(demo):
    """The full demo into the quick demo's folder: refused before anything trains (the demo
    folder's claim names what differs), with the way out."""
    out = demo[0]
    res = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert res.exit_code == 1
    assert 'mode: "quick" -> "full"' in res.output and "teacher_epochs: 1 -> 4" in res.output
    assert "pass --force to start it over, or pick a new --out" in res.output
    assert json.loads((out / "teacher" / "run.json").read_text())["training"]["params"]["train"]["epochs"] == 1


def test_every_method_at_both_budgets_with_exact_counts(demo):
    out, _, results, _ = demo
    teacher = results["rows"][0]
    assert teacher["method"] == "teacher" and teacher["relus"] == 27_136  # resnet18 --width 4, 28x28
    points = results["rows"][1:]
    # 5% and 33% of 27,136: int(1,356.8) = 1,356 and int(8,954.88) = 8,954
    assert [(r["method"], r["budget"]) for r in points] == [(m, b) for b in (1356, 8954) for m in METHODS]
    reached = [r for r in points if r["reachable"]]
    # the smallest HybReNet of a width-4 teacher (HRN-2x5x3x-m0.75, 2,304 ReLUs) is above 5%
    assert {(r["method"], r["budget"]) for r in points if not r["reachable"]} == {("hybrenet", 1356)}
    for row in reached:
        spec, model = load_run(out / "frontier" / row["run"])  # results.json: relative to the frontier
        assert count(model, spec.input_shape).relus == row["relus"] <= row["budget"]
        assert row["within_budget"] and row["top1"] is not None and row["macs"] > 0
        assert row["pi"]["delphi"]["total_s"] > 0
        # equal training: the teacher's epoch and 2 student epochs on the same 256 images
        assert row["compute"]["image_passes"] == 3 * 256
    assert results["compute_equal"] and teacher["compute"]["image_passes"] == 256
    base = next(r["built"]["base"] for r in points if r["method"] == "hybrenet_snl" and r["budget"] == 8954)
    assert 0.98 * 2 * 8954 <= base["relus"] <= 2 * 8954  # about 2x the budget's ReLUs, as published


def test_the_full_demos_claim_budget_builds_a_5x5x3x_base():
    """Issue 22: one budget >= 30% so DeepReShape builds a 5x5x3x network (spec only)."""
    from reshape.demo import MODES
    from reshape.methods import get_method
    from reshape.methods.hybrenet import base_spec
    from reshape.models import spec_for

    teacher = spec_for("resnet18", "fashion-mnist-mini", MODES["full"].width)
    budget = int(0.33 * count_spec(teacher).relus)
    spec, why = base_spec(teacher, "fashion-mnist-mini", budget, get_method("hybrenet_snl").defaults)
    assert why.multipliers == (5, 5, 3) and spec.name.startswith("HRN-5x5x3x")
    assert 0.98 * 2 * budget <= why.relus <= 2 * budget and why.macs > count_spec(teacher).macs  # uncapped


def test_the_best_hybrenet_is_exported_and_checked(demo):
    out, _, results, _ = demo
    ours = [r for r in results["rows"] if r["method"] in HYBRENETS and r["reachable"]]
    best = max(ours, key=lambda r: (r["top1"], -r["relus"]))
    record = json.loads((out / "export" / "export.json").read_text())
    best_run = (out / "frontier" / best["run"]).resolve()  # results.json: relative to the frontier
    assert Path(record["run"]).resolve() == best_run and record["relus"] == best["relus"]
    assert record["onnx_max_diff"] <= 1e-4
    for name in ("spec.json", "model.safetensors", "model.onnx", "config.json", "README.md"):
        assert (out / "export" / name).is_file(), name
    assert load_spec(out / "export" / "spec.json") == load_run(best_run, weights=False)[0]
    assert json.loads((out / "export" / "config.json").read_text())["architecture"] == "reshape_spec"
    assert f"reshape export {record['run']}" in (out / "export" / "README.md").read_text()


def test_cifar100_designs_are_counted_from_their_specs(demo):
    out = demo[0]
    rows = json.loads((out / "cifar100" / "summary.json").read_text())
    assert [r["budget"] for r in rows] == [25_000, 50_000, 100_000, 180_000]
    for r in rows:
        assert count_spec(load_spec(out / "cifar100" / r["spec"])).relus == r["relus"] <= r["budget"]
    assert (out / "front.png").stat().st_size > 20_000


def test_summary_opens_with_the_best_network_per_budget(demo):
    out, _, results, summary = demo
    answer = summary[summary.index("## Answer"):summary.index("## Build it")]
    assert summary.index("## Answer") < summary.index("## All points")
    assert "Every row's training agrees within 5%" in summary and "one seed" in summary
    for budget in (1356, 8954):
        ranked = sorted((r for r in results["rows"] if r["budget"] == budget and r["reachable"]),
                        key=lambda r: (-r["top1"], r["relus"]))
        best, runner = ranked[0], ranked[1]
        assert best["method"] in METHODS
        line = next(x for x in answer.splitlines() if f"({budget:,})" in x)
        # each method named by its registry family (SENet is "ours" there), never relabelled
        assert f"**{best['method']}** ({best['family']}), {100 * best['top1']:.2f}%" in line
        assert f"next {runner['method']}" in line
    # the pairs, each a paired difference with the binomial standard error of one seed
    by = {(r["method"], r["budget"]): r["top1"] for r in results["rows"] if r["reachable"]}
    for pair in results["pairs"]:
        if pair["n"]:
            ours, base = by[pair["ours"], pair["budget"]], by[pair["baseline"], pair["budget"]]
            assert pair["diff"] == pytest.approx(100 * (ours - base)) and pair["se_kind"].startswith("binomial")
            assert f"| {pair['label']} | {pair['ours']} | {pair['baseline']} | {pair['diff']:+.2f} |" in answer
    assert {(p["ours"], p["baseline"]) for p in results["pairs"]} == {
        ("hybrenet_snl", "snl"), ("hybrenet_senet", "senet"), ("hybrenet", "deepreduce")}
    assert "$ reshape synthesize --backbone resnet18 --width 4 --dataset fashion-mnist-mini --relus N" in summary
    commands = summary[summary.index("## Commands"):]
    for row in results["rows"][1:]:
        assert f"--methods {row['method']} --budgets {100 * row['fraction']:g}% " in commands
    assert "$ reshape train resnet18 --data fashion-mnist-mini --width 4" in commands


def test_the_build_command_synthesizes_the_network_the_hybrenet_method_trains(tmp_path):
    """summary.md's `reshape synthesize --width W ... --relus N` gives the spec the demo's
    hybrenet point trains for N (spec only, nothing trained)."""
    from reshape.methods.hybrenet import HybReNetParams, synthesize_for
    from reshape.models import spec_for

    teacher = spec_for("resnet18", "fashion-mnist-mini", 8)
    expected, _ = synthesize_for(teacher, "fashion-mnist-mini", 10_854, HybReNetParams())
    res = CliRunner().invoke(cli, ["synthesize", "--backbone", "resnet18", "--width", "8", "--dataset",
                                   "fashion-mnist-mini", "--relus", "10854", "--criticality", "1,4,2,3",
                                   "--out", str(tmp_path / "hrn.json")])
    assert res.exit_code == 0, res.output
    assert load_spec(tmp_path / "hrn.json") == expected
    assert count_spec(expected).relus <= 10_854
