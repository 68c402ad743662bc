"""Stage criticality: the metric, the proxy networks, the cache and resume, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from reshape.methods import criticality
from reshape.cli import cli
from reshape.accounting import count
from reshape.errors import ReshapeError
from reshape.models import build
from reshape.runs import WEIGHTS_FILE, RunDir, save_weights
from reshape.train import TrainingInterrupted

#: Accuracies the fake trainer reports per run: criticality = .125, .75, .875, .25.
FAKE_ACC = {"full": 0.9, "linear": 0.5, "stage1": 0.55, "stage2": 0.8, "stage3": 0.85, "stage4": 0.6}
TINY = ["resnet18", "--data", "fashion-mnist-mini", "--width", "4"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_metric_on_hand_numbers():
    assert criticality.criticality(0.7, 0.9, 0.5) == pytest.approx(0.5)
    assert criticality.criticality(0.5, 0.9, 0.5) == 0
    assert criticality.criticality(0.9, 0.9, 0.5) == pytest.approx(1)
    assert criticality.criticality(0.6, 0.5, 0.5) is None  # ReLUs bought nothing: undefined


def _counted(spec):
    with torch.device("meta"):
        model = build(spec)
    return count(model, spec.input_shape)


def test_only_stage_keeps_exactly_that_stages_relus(resnet18_cifar_spec):
    # ResNet18 at 32x32: stage k has 4 ReLU layers of 64*2^(k-1) x (32/2^(k-1))^2.
    stage2 = _counted(criticality.only_stage(resnet18_cifar_spec, 2))
    assert stage2.relus == 4 * 128 * 16 * 16 == 131_072
    assert stage2.stem_relus == 0
    stage1 = _counted(criticality.only_stage(resnet18_cifar_spec, 1))
    assert stage1.stem_relus == 64 * 32 * 32 == 65_536  # the stem ReLU goes with stage 1
    assert stage1.relus == 65_536 + 262_144
    assert {s.name: s.relus for s in stage1.stages if s.relus} == {"stem": 65_536, "layer1": 262_144}
    assert _counted(criticality.linear(resnet18_cifar_spec)).relus == 0
    assert list(criticality.proxy_specs(resnet18_cifar_spec)) == \
        ["full", "stage1", "stage2", "stage3", "stage4", "linear"]


def _result(stage_acc, acc_full=0.9, acc_lin=0.5):
    return criticality.Criticality("resnet18", "cifar100", None, None, {"epochs": 3}, acc_full, acc_lin,
                                   tuple(stage_acc), 557_056, (327_680, 131_072, 65_536, 32_768))


def test_scores_and_ranking_least_critical_first(tmp_path):
    result = _result([0.55, 0.8, 0.85, 0.6])
    assert result.scores == pytest.approx((0.125, 0.75, 0.875, 0.25))
    assert result.ranking == (1, 4, 2, 3)
    assert _result([0.7, 0.6, 0.7, 0.6]).ranking == (2, 4, 1, 3)  # ties: earlier stage first
    path = tmp_path / "crit.json"
    path.write_text(json.dumps(result.to_dict()))
    assert criticality.load(path) == result
    assert json.loads(path.read_text())["ranking"] == [1, 4, 2, 3]


def test_load_refuses_foreign_files(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"schema_version": 1, "block": "basic"}')
    with pytest.raises(ReshapeError, match="not written by `reshape criticality`"):
        criticality.load(path)
    broken = {**_result([0.5] * 4).to_dict(), "stages": [{"stage": 1}]}
    path.write_text(json.dumps(broken))
    with pytest.raises(ReshapeError, match="malformed"):
        criticality.load(path)


class FakeTrainer:
    """Stands in for the loop ``reshape.train.fit`` runs: saves the (untrained) weights and
    returns a final epoch with FAKE_ACC; call number ``interrupt_at`` is interrupted instead
    (once), so ``fit`` leaves that run unfinished in its manifest."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.interrupt_at = interrupt_at

    def install(self, monkeypatch) -> "FakeTrainer":
        monkeypatch.setattr("reshape.train._fit.run_epochs", self)
        return self

    def __call__(self, model, spec, cfg, train_set, test_set, run_dir, **kwargs):
        run_dir = Path(run_dir)
        self.calls.append(run_dir.name)
        if len(self.calls) == self.interrupt_at:
            self.interrupt_at = None
            raise TrainingInterrupted(run_dir, 0, cfg.epochs)
        save_weights(model, run_dir / WEIGHTS_FILE)
        return {"epoch": cfg.epochs, "test_top1": FAKE_ACC[run_dir.name]}


def test_cache_hit_trains_nothing_and_interrupted_runs_resume(tmp_path, monkeypatch):
    fake = FakeTrainer(interrupt_at=3).install(monkeypatch)
    measure = lambda: criticality.measure("resnet18", "fashion-mnist-mini", epochs=2, width=4,  # noqa: E731
                                          cache=tmp_path, limit=64, progress=False)
    with pytest.raises(TrainingInterrupted):
        measure()
    assert fake.calls == ["full", "stage1", "stage2"]
    fake.calls.clear()
    first = measure()  # full and stage1 finished: read back from their manifests
    assert fake.calls == ["stage2", "stage3", "stage4", "linear"]  # stage2 was interrupted: trained again
    assert first.ranking == (1, 4, 2, 3)
    assert first.stage_acc == (0.55, 0.8, 0.85, 0.6) and (first.acc_full, first.acc_lin) == (0.9, 0.5)
    assert first.full_relus == 27_136 and first.stage_relus == (15_680, 6_272, 3_136, 2_048)
    proxy = RunDir(Path(first.folder, "full")).require_manifest()
    assert proxy.method == "criticality" and proxy.status == "done"
    assert Path(first.folder).name.endswith(proxy.training["fingerprint"][:12])  # named by fit's fingerprint
    fake.calls.clear()
    again = measure()
    assert fake.calls == [] and again == first
    other_recipe = criticality.measure("resnet18", "fashion-mnist-mini", epochs=1, width=4,
                                       cache=tmp_path, limit=64, progress=False)
    assert len(fake.calls) == 6 and other_recipe.folder != first.folder
    other_subset = criticality.measure("resnet18", "fashion-mnist-mini", epochs=1, width=4,
                                       cache=tmp_path, limit=32, progress=False)
    assert len(fake.calls) == 12 and other_subset.folder != other_recipe.folder


def test_cache_location_follows_option_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RESHAPE_CACHE", str(tmp_path / "env"))
    assert criticality.cache_dir() == tmp_path / "env" / "criticality"
    assert criticality.cache_dir(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("RESHAPE_CACHE")
    assert criticality.cache_dir().parts[-3:] == (".cache", "reshape", "criticality")


def test_cli_json_trains_once_and_feeds_synthesize(tmp_path, monkeypatch):
    out = tmp_path / "crit.json"
    args = [*TINY, "--epochs", "1", "--limit", "128", "--batch-size", "64", "--cache", str(tmp_path / "c")]
    res = run("criticality", *args, "--json", "--out", str(out))
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data == json.loads(out.read_text())
    assert sorted(data["ranking"]) == [1, 2, 3, 4]
    assert [s["relus"] for s in data["stages"]] == [15_680, 6_272, 3_136, 2_048]
    assert all(0 <= s["acc"] <= 1 for s in data["stages"]) and 0 <= data["acc_lin"] <= 1
    assert data["recipe"]["epochs"] == 1 and data["limit"] == 128

    def no_training(*a, **k):
        raise AssertionError("a cached measurement must not train")

    monkeypatch.setattr("reshape.train._fit.run_epochs", no_training)
    table = run("criticality", *args)
    assert table.exit_code == 0, table.output
    assert "stage 2 only" in table.stdout and ",".join(map(str, data["ranking"])) in table.stdout

    synth = run("synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--relus", "180k",
                "--criticality-file", str(out), "--json")
    assert synth.exit_code == 0, synth.output
    assert json.loads(synth.stdout)["explanation"]["criticality"] == data["ranking"]


def test_cli_interrupt_says_how_to_resume(tmp_path, monkeypatch):
    FakeTrainer(interrupt_at=2).install(monkeypatch)
    res = run("criticality", *TINY, "--limit", "64", "--cache", str(tmp_path))
    assert res.exit_code == 130
    assert "rerun the same command to resume" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args, message", [
    (["nonet", "--data", "fashion-mnist-mini"], "unknown model 'nonet'"),
])
def test_bad_backbone_or_dataset_is_one_line(tmp_path, args, message):
    res = run("criticality", *args, "--cache", str(tmp_path))
    assert res.exit_code == 1
    assert res.output.startswith("error: ") and message in res.output
    assert res.output.count("\n") == 1 and "Traceback" not in res.output


def test_synthesize_criticality_file_errors(tmp_path):
    base = ["synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--relus", "180k"]
    both = run(*base, "--criticality", "1,4,2,3", "--criticality-file", str(tmp_path / "x.json"))
    assert both.exit_code == 2
    missing = run(*base, "--criticality-file", str(tmp_path / "x.json"))  # a missing path: usage, exit 2
    assert missing.exit_code == 2 and "x.json' does not exist" in missing.output
