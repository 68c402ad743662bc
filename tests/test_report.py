"""Reporting: published anchors, Pareto fronts, result readers, plots and export."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from importlib import resources

import optuna
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from reshape.cli import cli
from reshape.errors import ReshapeError
from reshape.models import build
from reshape.report import Point, load_anchors, mark_fronts, pareto_front
from reshape.report.frontier import best_per_budget
from reshape.report.pareto import front_flags
from reshape.report.plot import Design, Published, plot_frontier
from reshape.report.anchors import CONVENTIONS
from reshape.report.sources import read_csv, read_run, read_source, read_study
from reshape.runs import Manifest, RunDir, save_weights, summarize
from reshape.spec import ReluLayer, save_spec
from reshape.train import METRICS_FILE, TrainConfig, save_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: tiny_spec with 100 kept ReLUs in layer1.0.act1 and layer2.0.act2 removed. ReLUs on
#: 1x16x16: stem 4*16*16 = 1,024; layer1 100 + 1,024; layer2 8*8*8 = 512 (+0);
#: layer3 2 * 8*4*4 = 256; layer4 2 * 16*2*2 = 128; total 3,044.
PARTIAL_RELUS = 1_024 + 100 + 1_024 + 512 + 256 + 128


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def partial_spec(tiny_spec):
    return tiny_spec.with_relus([ReluLayer("layer1.0.act1", "masked", kept=100, granularity="neuron"),
                                 ReluLayer("layer2.0.act2", "removed")])


def make_run(folder, spec, top1: float | None = None, marker: str | None = None, dataset: str = ""):
    """A run directory without training: spec, weights and optionally metrics and config."""
    torch.manual_seed(0)
    model = build(spec)
    save_spec(spec, folder / "spec.json")
    save_weights(model, folder / "model.safetensors")
    if dataset:
        save_config(TrainConfig(dataset=dataset), folder)
    if top1 is not None:
        (folder / METRICS_FILE).write_text(json.dumps({"epoch": 1, "test_top1": top1}) + "\n")
    if marker:
        (folder / marker).write_text("{}")
    return folder


# -- anchors ---------------------------------------------------------------------------------
def test_anchor_table_parses_with_a_source_and_convention_per_row():
    text = resources.files("reshape.tables").joinpath("anchors.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == 55
    assert all(r["source"] and r["relu_convention"] in CONVENTIONS for r in rows)
    assert [len(load_anchors(d)) for d in ("cifar100", "cifar10", "tinyimagenet")] == [36, 9, 10]


@pytest.mark.parametrize("dataset, method, backbone, relus, top1, convention", [
    ("cifar100", "SNL", "ResNet18", 180_000, 77.65, "without_stem"),
    ("cifar100", "SNL", "ResNet18", 248_400, 77.70, "without_stem"),
    ("cifar100", "SENet", "WRN22-8", 150_000, 78.32, "with_stem"),
    ("cifar100", "DeepReDuce", "ResNet18", 12_300, 64.97, "unknown"),
    ("cifar10", "SENet", "ResNet18", 49_100, 93.6, "with_stem"),
    ("tinyimagenet", "AutoReP", "ResNet18", 290_000, 63.79, "unknown"),
])
def test_anchor_values_equal_anchors_md(dataset, method, backbone, relus, top1, convention):
    rows = [a for a in load_anchors(dataset, [method]) if a.backbone == backbone and a.relus == relus]
    assert len(rows) == 1 and rows[0].top1 == top1 and rows[0].relu_convention == convention


def test_claims_carry_no_accuracy():
    (claim,) = [a for a in load_anchors("cifar100") if a.top1 is None]
    assert (claim.method, claim.relus) == ("DeepReShape", 180_000) and "+2.35" in claim.note


def test_anchor_errors_list_the_choices():
    with pytest.raises(ReshapeError, match="anchors exist for: cifar100, cifar10, tinyimagenet"):
        load_anchors("mnist")
    with pytest.raises(ReshapeError, match="no published results for method 'snl2'.*SNL, SENet"):
        load_anchors("cifar10", ["snl2"])
    assert {a.method for a in load_anchors("cifar100", ["snl", "SENet"])} == {"SNL", "SENet"}


# -- fronts ----------------------------------------------------------------------------------
def test_pareto_front_on_hand_made_points():
    pts = [Point("a", r, t, "") for r, t in
           [(10, 50), (20, 60), (20, 55), (30, 58), (5, 50), (40, 70), (40, 70), (50, 65)]]
    # (10,50) loses to (5,50); (20,55) to (20,60); (30,58) to (20,60); (50,65) to (40,70);
    # the two equal (40,70) both stay.
    assert pareto_front(pts) == [False, True, False, False, True, True, True, False]
    assert pareto_front([]) == []


def test_fronts_are_per_method_and_keep_order():
    pts = [Point("a", 10, 60, ""), Point("b", 5, 70, ""), Point("a", 20, 55, ""),
           Point("b", 5, 70, "", ours=False)]
    assert [p.on_front for p in mark_fronts(pts)] == [True, True, False, True]


def test_front_flags_take_any_cost():
    # latency-like float costs: (0.5, 60) dominates (0.7, 55); (0.9, 70) beats everything
    # cheaper; (1.2, 70) costs more for the same accuracy.
    assert front_flags([(0.7, 55.0), (0.5, 60.0), (0.9, 70.0), (1.2, 70.0)]) == [False, True, True, False]


def _row(method, label, top1, relus, family="ours", reachable=True, passes=1000):
    """A frontier row as reshape.frontier writes it, with only what reports read."""
    return {"method": method, "family": family, "label": label, "budget": 1000 if label == "a" else 4000,
            "fraction": 0.05 if label == "a" else 0.2, "relus": relus, "top1": top1, "macs": 10 * relus,
            "reachable": reachable, "pi": {"delphi": {"online_s": relus / 1e4, "total_s": relus / 1e3}},
            "seed": 0, "run": f"{method}/{label}", "within_budget": True, "compute": {"image_passes": passes}}


def test_fronts_reads_sources_adds_anchors_and_plots(tmp_path):
    """``reshape.report.fronts.fronts``: `reshape pareto` as one library call."""
    from reshape.report.fronts import fronts

    results = tmp_path / "r.csv"
    results.write_text("method,relus,top1\nhrn,50000,74.1\nhrn,60000,73.0\nsnl,40000,70.0\n")
    seen = []
    points = fronts([str(results)], "cifar100", methods=["snl"], out=tmp_path / "front.png", on_source=seen.append)
    assert seen == [str(results)] and (tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"
    ours = [(p.method, p.relus, p.on_front) for p in points if p.ours]
    assert ours == [("hrn", 50_000, True), ("hrn", 60_000, False), ("snl", 40_000, True)]  # fronts per method
    published = [p for p in points if not p.ours]
    assert published and all(p.method.startswith("SNL ") for p in published)  # --methods: only those published
    assert all(p.ours for p in fronts([str(results)], "cifar100"))  # no anchors unless asked
    with pytest.raises(ReshapeError, match="published results have no measured cost"):
        fronts([str(results)], "cifar100", anchors=True, x="measured-bytes")


def test_best_per_budget_ranks_accuracy_then_relus():
    from reshape.frontier import FrontierResult

    rows = [{**_row("teacher", "teacher", 0.9, 8000), "family": "teacher"},
            _row("x", "a", 0.70, 1000), _row("y", "a", 0.75, 990), _row("z", "a", None, 0, reachable=False),
            _row("x", "b", 0.80, 4000), _row("y", "b", 0.80, 3900)]

    def best(rows):
        return [(b["method"], r and r["method"]) for b, r in best_per_budget(FrontierResult(Path("f"), "", {}, {}, rows))]

    # budget a: y (75%) over x (70%); unreachable z never counts. Budget b: a tie at 80%
    # goes to y, which uses fewer ReLUs (3,900), x is the runner-up.
    assert best(rows) == [("y", "x"), ("y", "x")]
    assert best([rows[0], rows[1]]) == [("x", None)]
    # rows whose training differs by more than 5% name no best at all
    assert best([*rows, _row("w", "a", 0.99, 900, passes=1100)]) == []
    assert best([*rows, _row("w", "a", 0.99, 900, passes=1050)]) == [("w", "y"), ("y", "x")]


def test_frontier_figure_with_published_panel(tmp_path):
    rows = [_row("hybrenet", "a", 0.70, 1000), _row("hybrenet", "b", 0.78, 4000),
            _row("senet", "a", 0.72, 1000), _row("senet", "b", 0.71, 4000)]
    teacher = {"method": "teacher", "relus": 8000, "top1": 0.85}
    published = Published("cifar100", load_anchors("cifar100"), [Design("HRN-a", 25_000, 24_896, 39_000_000)])
    out = plot_frontier(rows, teacher, "t", tmp_path / "front.png", published=published,
                        footer="machine x, 2026-01-01")
    two = plot_frontier(rows, teacher, "t", tmp_path / "two.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and two.read_bytes()[:4] == b"\x89PNG"
    from PIL import Image

    # three 7-inch panels at 150 dpi against two
    assert Image.open(out).size[0] == 3 * 7 * 150 and Image.open(two).size[0] == 2 * 7 * 150


# -- sources ---------------------------------------------------------------------------------
def test_run_directory_point(tmp_path, partial_spec):
    # a run of an older version (no run.json) stays readable, labelled as such
    make_run(tmp_path / "hrn-3k", partial_spec, top1=0.5)
    assert read_run(tmp_path / "hrn-3k") == [Point("hrn-3k (no run.json)", PARTIAL_RELUS, 50.0,
                                                   str(tmp_path / "hrn-3k"))]
    # a marker file no longer names the method: only run.json does
    make_run(tmp_path / "s", partial_spec, top1=0.25, marker="senet.json")
    assert read_run(tmp_path / "s")[0].method == "s (no run.json)"
    make_run(tmp_path / "empty", partial_spec)
    assert read_run(tmp_path / "empty") == []
    with pytest.raises(ReshapeError, match="no finished points"):
        read_source(str(tmp_path / "empty"))


def test_run_label_and_accuracy_come_from_run_json(tmp_path, partial_spec):
    # a method's run: labelled by its method, top-1 from the manifest's summary (not metrics.jsonl)
    make_run(tmp_path / "uniform-5k", partial_spec, top1=0.25)
    run = RunDir(tmp_path / "uniform-5k")
    run.write(Manifest("senet_uniform", {"budget": 5000}, "f", status="done", summary={"top1": 0.5}))
    assert read_run(run.path) == [Point("senet_uniform", PARTIAL_RELUS, 50.0, str(run.path))]
    summary = summarize(run.path)
    assert (summary["method"], summary["budget"], summary["status"]) == ("senet_uniform", 5000, "done")
    # a plain `reshape train` run is a network, not a method: its folder names it
    make_run(tmp_path / "hrn-3k", partial_spec)
    plain = RunDir(tmp_path / "hrn-3k")
    plain.write(Manifest("train", {}, "f", training={"status": "running", "last": {"test_top1": 0.3}}))
    assert read_run(plain.path)[0].method == "hrn-3k" and read_run(plain.path)[0].top1 == 30.0


def test_eval_prints_the_method_from_run_json(tmp_path, tiny_spec):
    make_run(tmp_path / "r", tiny_spec.replace(num_classes=10, input_size=28))
    RunDir(tmp_path / "r").write(Manifest("width", {"budget": 1}, "f"))
    res = run("eval", str(tmp_path / "r"), "--data", "fashion-mnist-mini", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["method"] == "width"
    assert "(width) on fashion-mnist-mini: top-1" in run("eval", str(tmp_path / "r"), "--data",
                                                          "fashion-mnist-mini").output


def test_run_of_another_dataset_is_refused(tmp_path, partial_spec):
    make_run(tmp_path / "run", partial_spec, top1=0.5, dataset="mnist")
    assert read_run(tmp_path / "run", "mnist")[0].top1 == 50.0
    with pytest.raises(ReshapeError, match="trained on mnist, not cifar100"):
        read_run(tmp_path / "run", "cifar100")


def test_results_csv_filters_by_dataset(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("method,relus,top1,dataset\nhrn,50000,74.1,cifar100\nhrn,30000,70,cifar10\n")
    assert read_csv(path, "cifar100") == [Point("hrn", 50_000, 74.1, str(path))]
    assert len(read_csv(path)) == 2
    (tmp_path / "bad.csv").write_text("method,top1\nx,1\n")
    with pytest.raises(ReshapeError, match="missing column 'relus'"):
        read_csv(tmp_path / "bad.csv")


def test_study_reader_user_attrs_and_objectives(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="hrn", storage=url, directions=["maximize", "minimize"])
    for relus, top1 in [(50_000, 0.70), (80_000, 0.72), (90_000, 0.71)]:
        study.add_trial(optuna.trial.create_trial(values=[top1, relus], user_attrs={"method": "HRN"}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    points = read_study(f"{url}::hrn")
    assert [(p.method, p.relus, p.top1) for p in points] == [
        ("HRN", 50_000, 70.0), ("HRN", 80_000, 72.0), ("HRN", 90_000, 71.0)]
    assert [p.on_front for p in mark_fronts(points)] == [True, True, False]

    study.add_trial(optuna.trial.create_trial(values=[0.0, 1.0], user_attrs={"top1": None, "relus": 1}))
    assert len(read_study(f"{url}::hrn")) == 3  # a trial that was never trained is no point
    journal = tmp_path / "j.log"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    other = optuna.create_study(study_name="r18", storage=storage)
    other.add_trial(optuna.trial.create_trial(value=0.0, user_attrs={"relus": 1234, "top1": 0.5}))
    assert read_study(f"journal:{journal}::r18") == [Point("r18", 1234, 50.0, f"journal:{journal}::r18 #0")]
    assert read_study(f"{journal}::r18")[0].relus == 1234


def test_study_reader_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="pct", storage=url, directions=["maximize", "minimize"])
    with pytest.raises(ReshapeError, match="no finished points"):
        read_source(f"{url}::pct")
    study.add_trial(optuna.trial.create_trial(values=[72.0, 1000]))
    with pytest.raises(ReshapeError, match="must be fractions"):
        read_study(f"{url}::pct")
    with pytest.raises(ReshapeError, match="no study 'nope'.*studies there: pct"):
        read_study(f"{url}::nope")
    with pytest.raises(ReshapeError, match="no such file"):
        read_study(f"journal:{tmp_path / 'missing.log'}::x")
    with pytest.raises(ReshapeError, match="cannot open storage 'foo://bar'"):
        read_study("foo://bar::x")
    assert not (tmp_path / "missing.log").exists()


# -- CLI: pareto -----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_pareto_plot_files(tmp_path, partial_spec, suffix, magic):
    make_run(tmp_path / "run", partial_spec, top1=0.5)
    out = tmp_path / f"front{suffix}"
    res = run("pareto", str(tmp_path / "run"), "--dataset", "cifar100", "--methods", "snl,senet",
              "--out", str(out))
    assert res.exit_code == 0, res.output
    assert magic in out.read_bytes()[:400] and "on front" in res.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_pareto_json_flags(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("method,relus,top1\nhrn,50000,74.1\nhrn,90000,73.0\n")
    res = run("pareto", str(path), "--dataset", "cifar100", "--methods", "senet", "--json")
    assert res.exit_code == 0, res.output
    points = json.loads(res.output)
    assert [(p["method"], p["relus"], p["ours"], p["on_front"]) for p in points] == [
        ("hrn", 50_000, True, True), ("hrn", 90_000, True, False),
        ("SENet ResNet18", 24_600, False, True), ("SENet ResNet18", 49_600, False, True),
        ("SENet WRN22-8", 150_000, False, True)]


def test_pareto_bad_input(tmp_path, partial_spec):
    make_run(tmp_path / "run", partial_spec)
    res = run("pareto", str(tmp_path / "run"), "--dataset", "cifar100", "--out", str(tmp_path / "f.png"))
    assert res.exit_code == 1 and "no finished points" in res.output and not (tmp_path / "f.png").exists()
    assert "Traceback" not in res.output
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("method,relus,top1\nhrn,50000,74.1\n")
    res = run("pareto", str(csv_file), "--dataset", "mnist", "--anchors")
    assert res.exit_code == 1 and "anchors exist for: cifar100, cifar10, tinyimagenet" in res.output
    assert run("pareto", str(csv_file), "--dataset", "cifar100", "--out", "f.jpg").exit_code == 2


# -- export ----------------------------------------------------------------------------------
def test_export_round_trip_is_bit_identical_through_timm(tmp_path, partial_spec):
    import timm

    run_dir = make_run(tmp_path / "run", partial_spec, top1=0.5)
    res = run("export", str(run_dir), "--out", str(tmp_path / "out"), "--timm-config", "--dataset", "mnist")
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    # timm's own writer: architecture and classes at the root, the spec as a model argument
    assert config["architecture"] == "reshape_spec" and config["num_classes"] == 3
    assert config["model_args"]["spec"] == partial_spec.to_dict()
    assert config["pretrained_cfg"]["input_size"] == [1, 16, 16]
    assert config["pretrained_cfg"]["mean"] == [0.1307] and config["pretrained_cfg"]["std"] == [0.3081]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors", "run.json",
                                                                    "spec.json"]
    torch.manual_seed(0)
    original = build(partial_spec)
    original.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    x = torch.randn(5, 1, 16, 16)
    # timm alone rebuilds it from the folder, weights loaded; and the spec + safetensors route
    model = timm.create_model(f"local-dir:{tmp_path / 'out'}", pretrained=True)
    again = timm.create_model("reshape_spec", spec=str(tmp_path / "out" / "spec.json"))
    again.load_state_dict(load_file(str(tmp_path / "out" / "model.safetensors")))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), original.eval()(x)) and torch.equal(again.eval()(x), model(x))
    assert int(model.layer1[0].act1.mask.sum()) == 100
    assert tuple(timm.data.resolve_data_config({}, model=model)["mean"]) == (0.1307,)


def test_onnx_export_matches_pytorch(tmp_path, partial_spec):
    import onnxruntime

    run_dir = make_run(tmp_path / "run", partial_spec, top1=0.5)
    res = run("export", str(run_dir), "--out", str(tmp_path / "out"), "--onnx", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert 0 <= report["onnx_max_diff"] <= 1e-4
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    model = build(partial_spec)
    model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    x = torch.randn(3, 1, 16, 16)  # a batch size the export never saw
    with torch.no_grad():
        expected = model.eval()(x)
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert got.shape == (3, 3) and torch.allclose(got, expected, atol=1e-4, rtol=0)


def test_export_config_takes_the_run_dataset(tmp_path, partial_spec):
    run_dir = make_run(tmp_path / "run", partial_spec, dataset="fashion-mnist")
    assert run("export", str(run_dir), "--out", str(tmp_path / "out"), "--timm-config").exit_code == 0
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())["pretrained_cfg"]
    assert (cfg["tag"], cfg["mean"], cfg["std"]) == ("fashion-mnist", [0.2860], [0.3530])


def test_export_errors(tmp_path, partial_spec):
    run_dir = make_run(tmp_path / "run", partial_spec)
    res = run("export", str(run_dir), "--out", str(tmp_path / "out"), "--timm-config")
    assert res.exit_code == 1 and "name it with --dataset" in res.output
    (run_dir / "model.safetensors").unlink()
    res = run("export", str(run_dir), "--out", str(tmp_path / "out"))
    assert res.exit_code == 1 and "no trained weights" in res.output


def test_rewritten_run_exports_as_a_run_directory(tmp_path, tiny_spec):
    from reshape.graph.rewrite import Step, replay
    from reshape.runs import save_rewritten
    from reshape.runs import load_run

    steps = [Step("linearize", ("layer1.0",)), Step("merge", ("layer1.0",))]
    mg = replay(build(tiny_spec).eval(), (1, 16, 16), steps)
    save_rewritten(tmp_path / "run", tiny_spec, steps, mg)
    res = run("export", str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--onnx")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "graph.json").is_file() and (tmp_path / "out" / "model.onnx").is_file()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(load_run(tmp_path / "out")[1].eval()(x), mg.to_module().eval()(x))
    res = run("export", str(tmp_path / "run"), "--out", str(tmp_path / "out2"), "--timm-config",
              "--dataset", "mnist")
    assert res.exit_code == 1 and "timm cannot rebuild" in res.output
