"""Measured PI cost (reshape.measure, `reshape measure`): plans, the SPU backend, calibration fits.

The backend tests run the real SecretFlow SPU two-party protocols in the backend
environment (`make pi-backend`, .venv-pi); where it is missing they skip saying so.
CI runs `make pi-backend` first (.ci/run), so they run there. Each uses the 1x16x16
width-4 network of conftest's ``tiny_spec`` to stay within a few seconds of compute.
"""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from reshape.cli import cli
from reshape.errors import ReshapeError
from reshape.measure import backend_python, fit_costs, measure, plan, read_measured, result_name
from reshape.models import build
from reshape.spec import ArchSpec, ReluLayer, save_spec


def _backend_or_skip():
    try:
        return backend_python()
    except ReshapeError as exc:
        pytest.skip(f"SPU backend missing ({exc}); install it with `make pi-backend`")


def _record(relus: int, macs: int, relu: tuple[float, float], conv: tuple[float, float],
            protocol: str = "cheetah") -> dict:
    """The fields of a `reshape measure` record that ``fit_costs`` reads: (bytes, seconds) per part."""
    kind = lambda b, s: {"bytes": b, "seconds": s}  # noqa: E731
    return {"backend": {"protocol": protocol}, "counts": {"relus": relus, "macs": macs},
            "measured": {"online_bytes": relu[0] + conv[0], "online_s": relu[1] + conv[1],
                         "by_kind": {"relu": kind(*relu), "conv": kind(*conv), "other": kind(0, 0)}}}


NETS = [(1000, 50_000), (500, 50_000), (4000, 400_000)]


def test_fit_recovers_per_relu_and_per_mac_constants():
    # ReLU layers: 100 B and 10 us per ReLU; convolutions: 2 B and 0.5 us per MAC, exactly.
    # Each part is fitted on its own count, so the fit gives the constants back with no error.
    records = [_record(r, m, (100 * r, 1e-5 * r), (2 * m, 5e-7 * m)) for r, m in NETS]
    fitted = fit_costs(records)
    assert fitted["relu_online_bytes"] == pytest.approx(100)
    assert fitted["mac_online_bytes"] == pytest.approx(2)
    assert fitted["relu_online_us"] == pytest.approx(10)
    assert fitted["mac_online_us"] == pytest.approx(0.5)
    assert fitted["fixed_online_bytes"] == pytest.approx(0, abs=1e-6)
    assert fitted["bytes_max_rel_error"] == pytest.approx(0, abs=1e-12)


def test_fit_has_an_intercept_issue_25():
    """The issue's defect: every network carries a fixed ~270 KB in its ReLU layers, and a fit
    through zero charged it to the ReLUs (111.2 B per ReLU where the slope is 98.3)."""
    records = [_record(r, m, (98.3 * r + 270_000, 1.0), (2 * m + 10_000, 1.0)) for r, m in NETS]
    fitted = fit_costs(records)
    assert fitted["relu_online_bytes"] == pytest.approx(98.3)
    assert fitted["relu_fixed_online_bytes"] == pytest.approx(270_000)
    assert fitted["mac_online_bytes"] == pytest.approx(2)
    assert fitted["fixed_online_bytes"] == pytest.approx(280_000)
    assert fitted["bytes_max_rel_error"] == pytest.approx(0, abs=1e-9)


def test_fit_reports_its_error_on_the_calibration_set():
    # ReLU part 100 r + 5,000 + e with e = (700, -600, -100): e sums to 0 and to 0 against the
    # ReLU counts (1000*700 - 500*600 - 4000*100 = 0), so the line is still 100 r + 5,000 and
    # the errors are e's. Worst ReLU part: 600 / (50,000 + 5,000 - 600); worst total adds the
    # exact conv bytes 2 * 50,000.
    e = (700, -600, -100)
    records = [_record(r, m, (100 * r + 5_000 + d, 1.0), (2 * m, 1.0)) for (r, m), d in zip(NETS, e)]
    fitted = fit_costs(records)
    assert (fitted["relu_online_bytes"], fitted["relu_fixed_online_bytes"]) == (pytest.approx(100), pytest.approx(5_000))
    assert fitted["relu_bytes_max_rel_error"] == pytest.approx(600 / 54_400)
    assert fitted["bytes_max_rel_error"] == pytest.approx(600 / 154_400)
    assert [x["rel_error"] for x in fitted["errors"]] == pytest.approx([700 / 205_700, 600 / 154_400, 100 / 1_204_900])
    # a direct difference of the two networks with equal MACs: (105,700 - 54,400) / 500 =
    # 102.6 B per ReLU, within 5% of the fitted slope
    assert abs(102.6 - fitted["relu_online_bytes"]) / 102.6 < 0.05


def test_fit_refuses_too_few_or_mixed_measurements():
    with pytest.raises(ReshapeError, match="at least two"):
        fit_costs([_record(1000, 50_000, (1, 1), (1, 1))])
    with pytest.raises(ReshapeError, match="one protocol"):
        fit_costs([_record(1000, 50_000, (1, 1), (1, 1)), _record(10, 5, (1, 1), (1, 1), protocol="semi2k")])


def test_plan_refuses_networks_that_are_not_spec_resnets(tiny_spec):
    with pytest.raises(ReshapeError, match="ResNet-family specs and their rewritten graphs only"):
        plan(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()), tiny_spec)
    traced = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Sigmoid()))
    with pytest.raises(ReshapeError, match=r"cannot run node _1 \(Sigmoid\) of the rewritten graph"):
        plan(traced, tiny_spec)


def test_plan_folds_bn_and_keeps_only_masked_positions(tiny_spec):
    spec = tiny_spec.with_relus([ReluLayer("layer1.0.act1", "masked", kept=100, granularity="neuron")])
    p = plan(build(spec), spec)
    convs = [op for op in p.ops if op["op"] == "conv"]
    # 1 stem conv + 2 per block x 4 blocks + 3 downsample convs (stages 2-4 change width or stride)
    assert len(convs) == 1 + 2 * 4 + 3
    assert not any(name.endswith(("running_mean", "bn1.weight")) for name in p.tensors)
    keep = p.tensors["keep.layer1.0.act1"]
    assert keep.numel() == 100 and keep.unique().numel() == 100  # positions in C*H*W = 4*16*16


def test_head_divides_by_the_pooled_area_even_when_the_last_relus_are_removed(tiny_spec):
    # 1x16x16 input, stride-1 stem, stages 2-4 stride 2: layer4 is 16 / 8 = 2 x 2, so the
    # head's folded weight is fc.weight / 4 (layer3's 4 x 4 would give / 16).
    spec = tiny_spec.with_relus([ReluLayer("layer4.0.act1", "removed"), ReluLayer("layer4.0.act2", "removed")])
    model = build(spec)
    p = plan(model, spec)
    assert torch.equal(p.tensors["w.fc"], model.fc.weight.detach() / 4)


def test_missing_backend_is_one_line_with_the_install_command(tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("RESHAPE_PI_PYTHON", str(tmp_path / "no-python"))
    save_spec(tiny_spec, tmp_path / "spec.json")
    res = CliRunner().invoke(cli, ["measure", str(tmp_path / "spec.json"), "--protocol", "semi2k"])
    assert res.exit_code == 1
    assert "make pi-backend" in res.output and "Traceback" not in res.output


def _measure(spec: ArchSpec, tmp_path, name: str, **kw) -> dict:
    save_spec(spec, tmp_path / f"{name}.json")
    return measure(tmp_path / f"{name}.json", out=tmp_path / name, **kw)


def test_semi2k_matches_plaintext_and_bytes_grow_with_kept_relus(tiny_spec, tmp_path):
    _backend_or_skip()
    # the teacher over two processes (brpc), the masked one in-process: both paths run
    full = _measure(tiny_spec, tmp_path, "full", protocol="semi2k", link="brpc")
    half = tiny_spec.with_relus([ReluLayer("layer1.0.act1", "masked", kept=100, granularity="neuron"),
                                 ReluLayer("layer2.0.act2", "removed")])
    lean = _measure(half, tmp_path, "lean", protocol="semi2k", link="mem")
    for r in (full, lean):  # fixed point with 18 fraction bits: errors far below the logits' scale
        assert r["check"]["max_abs_diff"] < 1e-3 * max(1.0, r["check"]["max_abs_output"])
    assert lean["counts"]["relus"] < full["counts"]["relus"]
    assert lean["counts"]["macs"] == full["counts"]["macs"]
    assert lean["measured"]["online_bytes"] < full["measured"]["online_bytes"]
    # the ReLU part scales with the kept count alone: equal bytes per ReLU in both networks
    per_relu = [r["measured"]["by_kind"]["relu"]["bytes"] / r["counts"]["relus"] for r in (full, lean)]
    assert per_relu[0] == pytest.approx(per_relu[1])
    assert full["measured"]["by_kind"]["conv"]["bytes"] == lean["measured"]["by_kind"]["conv"]["bytes"]
    assert full["backend"]["link"] == "brpc"
    assert read_measured(tmp_path / "full", "semi2k") == json.loads(
        (tmp_path / "full" / result_name("semi2k")).read_text())


def test_cheetah_matches_plaintext_with_setup_apart(tiny_spec, tmp_path):
    _backend_or_skip()
    r = _measure(tiny_spec, tmp_path, "cheetah", protocol="cheetah", link="mem")
    assert r["check"]["max_abs_diff"] < 1e-3 * max(1.0, r["check"]["max_abs_output"])
    m = r["measured"]
    assert m["setup_bytes"] > 0 and m["online_bytes"] > 0
    assert m["online_bytes"] == sum(k["bytes"] for k in m["by_kind"].values())
    # the ReLU part apart, per kept ReLU, and the rest; the ReLU part compared with a ReLU estimate
    relu = m["by_kind"]["relu"]["bytes"]
    assert r["relu_part"]["bytes"] == relu and r["linear_part"]["bytes"] == m["online_bytes"] - relu
    assert r["relu_part"]["per_kept_relu"] == pytest.approx(relu / r["counts"]["relus"])
    assert r["relu_part"]["fixed_bytes"] == pytest.approx(relu - r["relu_part"]["slope_per_kept_relu"]
                                                          * r["counts"]["relus"])
    assert r["measured_over_estimated"]["relu_part_over_published"]["ratio"] == pytest.approx(
        relu / (239 * r["counts"]["relus"]))
    res = CliRunner().invoke(cli, ["measure", str(tmp_path / "cheetah.json"), "--protocol", "cheetah",
                                   "--link", "mem", "--out", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output
    assert "B per kept ReLU (spu-cheetah slope)" in res.output and "ReLU part" in res.output


# -- reports on a measured x axis --------------------------------------------------------------
def test_front_by_measured_cost_differs_from_front_by_relus():
    from reshape.report import Point, pareto_front

    # b has more ReLUs but costs less measured: by ReLUs both are on the front (a is
    # cheaper, b more accurate); by measured bytes b is cheaper and more accurate.
    by_relus = [Point("m", 10, 50.0, ""), Point("m", 20, 60.0, "")]
    by_bytes = [Point("m", 10, 50.0, "", cost=300.0), Point("m", 20, 60.0, "", cost=100.0)]
    assert pareto_front(by_relus) == [True, True]
    assert pareto_front(by_bytes) == [False, True]


def _run_dir(folder, spec, top1: float, online_bytes: float | None):
    from reshape.runs import METRICS_FILE, save_weights

    folder.mkdir()
    torch.manual_seed(0)
    save_spec(spec, folder / "spec.json")
    save_weights(build(spec), folder / "model.safetensors")
    (folder / METRICS_FILE).write_text(json.dumps({"epoch": 1, "test_top1": top1}) + "\n")
    if online_bytes is not None:  # the fields of a `reshape measure` record that reports read
        (folder / result_name("cheetah")).write_text(json.dumps({"measured": {"online_bytes": online_bytes,
                                                                              "online_s": 1.5}}))
    return folder


def test_pareto_puts_measured_bytes_on_the_x_axis(tiny_spec, tmp_path):
    run = _run_dir(tmp_path / "t", tiny_spec, 0.5, 2.5e6)
    res = CliRunner().invoke(cli, ["pareto", str(run), "--dataset", "fashion-mnist-mini",
                                   "--x", "measured-bytes", "--json"])
    assert res.exit_code == 0, res.output
    (point,) = json.loads(res.output)
    assert point["cost"] == 2.5e6 and point["top1"] == 50.0
    res = CliRunner().invoke(cli, ["pareto", str(run), "--dataset", "fashion-mnist-mini",
                                   "--x", "measured-seconds", "--out", str(tmp_path / "f.png")])
    assert res.exit_code == 0 and (tmp_path / "f.png").is_file() and "measured s" in res.output


def test_pareto_reads_a_frontier_folder_and_its_measured_points(tiny_spec, tmp_path):
    """A `reshape frontier` folder stands for its teacher and reached points; on a measured
    axis only the measured ones are drawn (the unreachable point has no run)."""
    from reshape.frontier import RESULTS_FILE, SETTING_FILE

    front = tmp_path / "front"
    (front / "snl").mkdir(parents=True)
    teacher = _run_dir(tmp_path / "teacher", tiny_spec, 0.8, 9e6)
    _run_dir(front / "snl" / "10pct", tiny_spec, 0.6, None)  # trained, not measured
    _run_dir(front / "snl" / "5pct", tiny_spec, 0.5, 3e6)
    (front / SETTING_FILE).write_text("{}")
    rows = [{"method": "teacher", "run": str(teacher), "reachable": True},
            {"method": "snl", "label": "10pct", "run": "elsewhere/snl/10pct", "reachable": True},
            {"method": "snl", "label": "5pct", "run": "elsewhere/snl/5pct", "reachable": True},
            {"method": "deepreduce", "label": "5pct", "run": None, "reachable": False}]
    (front / RESULTS_FILE).write_text(json.dumps({"rows": rows}))
    args = ["pareto", str(front), "--dataset", "fashion-mnist-mini", "--json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert sorted(p["top1"] for p in json.loads(res.output)) == [50.0, 60.0, 80.0]
    res = CliRunner().invoke(cli, [*args, "--x", "measured-bytes"])
    assert res.exit_code == 0, res.output
    assert sorted((p["cost"], p["top1"]) for p in json.loads(res.output)) == [(3e6, 50.0), (9e6, 80.0)]
    (teacher / result_name("cheetah")).unlink()
    (front / "snl" / "5pct" / result_name("cheetah")).unlink()
    res = CliRunner().invoke(cli, [*args, "--x", "measured-bytes"])
    assert res.exit_code == 1 and "no point of this frontier" in res.output and "reshape measure" in res.output


def test_pareto_measured_axis_errors(tiny_spec, tmp_path):
    bare = _run_dir(tmp_path / "bare", tiny_spec, 0.5, None)
    res = CliRunner().invoke(cli, ["pareto", str(bare), "--dataset", "fashion-mnist-mini", "--x", "measured-bytes"])
    assert res.exit_code == 1 and "reshape measure" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["pareto", str(bare), "--dataset", "cifar100", "--anchors",
                                   "--x", "measured-bytes"])
    assert res.exit_code == 2 and "no measured cost" in res.output


def test_measured_profiles_are_named_explicitly_never_listed_with_published_ones(tmp_path):
    from reshape.cost import estimate, load_costs
    from reshape.measure import write_profile

    published, everything = load_costs(), load_costs(measured=True)
    assert "spu-semi2k" in everything and "spu-semi2k" not in published  # frontier columns stay put
    assert set(published) <= set(everything)
    # the shipped SEMI2K fit: 144 B per ReLU exactly (SEMI2K FM64's ReLU bytes are 144 per element)
    assert everything["spu-semi2k"]["relu_online_bytes"] == 144.0
    e = estimate(1000, 0, 1, "spu-semi2k")
    assert e.online_bytes == 144_000
    fitted = fit_costs([_record(r, m, (100 * r, 1e-5 * r), (2 * m, 5e-7 * m)) for r, m in NETS])
    write_profile(fitted, "mine", tmp_path / "t.json", ["a", "b", "c"], "test machine", "2026-01-01")
    entry = json.loads((tmp_path / "t.json").read_text())["mine"]
    assert entry["relu_online_bytes"]["value"] == pytest.approx(100)
    assert "test machine" in entry["mac_online_bytes"]["source"] and "2026-01-01" in entry["relu_online_us"]["source"]
    assert entry["fixed_online_bytes"]["value"] == pytest.approx(0, abs=1e-6) and "intercept" in entry["fixed_online_bytes"]["source"]
    res = CliRunner().invoke(cli, ["count", "resnet18", "--dataset", "cifar100", "--protocol", "spu-semi2k"])
    assert res.exit_code == 0 and "spu-semi2k estimate" in res.output


def test_bad_out_and_a_python_without_spu_fail_in_one_line(tiny_spec, tmp_path, monkeypatch):
    import sys

    save_spec(tiny_spec, tmp_path / "spec.json")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("RESHAPE_PI_PYTHON", sys.executable)  # exists, but has no spu/jax
    res = CliRunner().invoke(cli, ["measure", str(tmp_path / "spec.json"), "--out", str(tmp_path / "file")])
    assert res.exit_code == 2  # a file given as the output folder: a bad option value
    res = CliRunner().invoke(cli, ["measure", str(tmp_path / "spec.json"), "--out", str(tmp_path / "file" / "sub")])
    assert res.exit_code == 2 and "is a file, not a folder" in res.output  # refused before running
    res = CliRunner().invoke(cli, ["measure", str(tmp_path / "spec.json"), "--protocol", "semi2k"])
    assert res.exit_code == 1 and "make pi-backend" in res.output and "Traceback" not in res.output


# -- smooth ops priced per element (issue 25) ---------------------------------------------------
def test_smooth_constants_are_written_into_a_profile_and_priced(tmp_path):
    from reshape.cost import estimate, load_costs
    from reshape.measure import write_profile, write_smooth

    table = tmp_path / "t.json"
    write_profile(fit_costs([_record(r, m, (100 * r, 1e-5 * r), (2 * m, 5e-7 * m)) for r, m in NETS]), "mine", table,
                  ["a", "b", "c"], "test machine", "2026-01-01")
    runs = [{"elements": 100, "max_abs_diff": 1e-4, "spu": "0.9.5"}, {"elements": 300, "max_abs_diff": 2e-4, "spu": "0.9.5"}]
    write_smooth([{"op": "gelu", "protocol": "cheetah", "field": "fm64", "row": 197, "runs": runs,
                   "online_bytes": 3000.0, "online_us": 20.0}], "mine", table, "test machine", "2026-01-02")
    entry = json.loads(table.read_text())["mine"]["smooth"]
    assert entry["gelu"]["online_bytes"]["value"] == 3000.0
    assert "bytes, the difference of 100 and 300 elements" in entry["gelu"]["online_bytes"]["source"]
    # the table is a cost file: a network with GELUs is priced, one with a softmax too is not
    costs = load_costs(table)
    e = estimate(10, 0, 0, "mine", costs, {"gelu": 50})
    assert e.unpriced == () and e.online_bytes == pytest.approx(10 * 100 + 50 * 3000)
    assert estimate(10, 0, 0, "mine", costs, {"gelu": 50, "softmax": 5}).unpriced == ("softmax",)
    # refitting the ReLU/MAC constants keeps the measured smooth ones
    write_profile(fit_costs([_record(r, m, (90 * r, 1e-5 * r), (2 * m, 5e-7 * m)) for r, m in NETS]), "mine", table,
                  ["a", "b", "c"], "test machine", "2026-01-03")
    assert json.loads(table.read_text())["mine"]["smooth"]["gelu"]["online_bytes"]["value"] == 3000.0


def test_smooth_op_measured_per_element_under_spu():
    from reshape.measure import measure_smooth

    _backend_or_skip()
    m = measure_smooth("sigmoid", "semi2k", link="mem", row=8, rows=(1, 3))
    assert [r["elements"] for r in m["runs"]] == [8, 24]
    assert all(r["max_abs_diff"] < 1e-2 for r in m["runs"])
    assert m["online_bytes"] == (m["runs"][1]["online_bytes"] - m["runs"][0]["online_bytes"]) / 16 > 144
    with pytest.raises(ReshapeError, match="no backend function for smooth op 'erf'"):
        measure_smooth("erf")


def test_a_rewritten_shallow_block_run_is_measured(tiny_spec, tmp_path):
    """Issue 25: merged shallow blocks used to be refused; the plan now follows the rewritten
    graph (a merged conv keeps its own bias) and matches plaintext under SPU."""
    from reshape.graph.rewrite import Step, replay
    from reshape.runs import save_rewritten

    _backend_or_skip()
    steps = [Step("linearize", ("layer1.0",)), Step("merge", ("layer1.0",))]
    mg = replay(build(tiny_spec).eval(), (1, 16, 16), steps)
    save_rewritten(tmp_path / "run", tiny_spec, steps, mg)
    p = plan(mg.to_module(), tiny_spec)
    merged = next(op for op in p.ops if op["out"] == "layer1_0_merged")
    assert merged["op"] == "conv" and merged["padding"] == 2  # two 3x3 convs merged into one 5x5
    r = measure(tmp_path / "run", protocol="semi2k", link="mem")
    assert r["check"]["max_abs_diff"] < 1e-3 * max(1.0, r["check"]["max_abs_output"])
    # layer1.0's act1 is gone: 4x16x16 fewer ReLUs than the tiny spec's 4,480, at 144 B each
    assert r["counts"]["relus"] == 4_480 - 4 * 16 * 16
    assert r["relu_part"]["bytes"] == 144 * r["counts"]["relus"]
