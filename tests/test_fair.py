"""Fair by construction (issue 22): one Setting, recorded and equal training, a validation
split, seeds with a teacher each, paired comparisons and iso-accuracy ReLUs.

A tiny teacher (ResNet18 at width 4 on 256 fashion-mnist-mini images, 64 more for
validation, 1 epoch) serves the module.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from reshape import compare
from reshape.cli import cli
from reshape.data import splits
from reshape.errors import ReshapeError
from reshape.frontier import run_frontier
from reshape.methods import get_method, setting_config, setting_splits
from reshape.models import spec_for
from reshape.runs import WEIGHTS_FILE, RunDir, compute_of
from reshape.setting import EPOCHS, KD_ALPHA, Setting, parse_seeds
from reshape.train import fit, load_config

DATA = "fashion-mnist-mini"
SETTING = Setting(data=DATA, limit=256, val=64, epochs=2, batch_size=64, progress=False)
TINY = ["--limit", "256", "--val", "64", "--batch-size", "64", "--epochs", "2"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fair") / "teacher"
    fit(out, spec_for("resnet18", DATA, 4), setting_config(SETTING, 1, 0.1), setting_splits(SETTING), progress=False)
    return out


# -- the setting --------------------------------------------------------------------------------
def test_one_setting_one_set_of_defaults():
    s = Setting(DATA)
    assert (s.epochs, s.kd_alpha, s.val, s.seed) == (EPOCHS, KD_ALPHA, 0, 0) == (10, 0.5, 0, 0)
    assert s.stages() == (5, 5) and s.with_seed(3).seed == 3 and s.with_seed(3).key != s.key
    for bad, message in [(dict(epochs=0), "epochs must be a positive integer"), (dict(val=-1), "val must be"),
                         (dict(seed=-2), "seed must be an integer >= 0"), (dict(kd_alpha=math.nan), "kd_alpha"),
                         (dict(limit=0), "limit must be a positive")]:
        with pytest.raises(ReshapeError, match=message):
            Setting(DATA, **bad)


@pytest.mark.parametrize("text, message", [("", "comma-separated"), ("0,,1", "comma-separated"),
                                           ("a", "comma-separated"), ("-1", "a seed must be >= 0"),
                                           ("0,1,0", "seed 0 is given twice")])
def test_bad_seeds_are_one_line_errors(text, message):
    with pytest.raises(ReshapeError, match=message):
        parse_seeds(text)


def test_seeds_parse():
    assert parse_seeds("0, 1,2") == (0, 1, 2)


# -- the validation split -----------------------------------------------------------------------
def test_validation_images_are_carved_before_the_limit_and_never_trained_on():
    data = splits(DATA, limit=256, seed=0, val=64)
    assert (len(data.train), len(data.val), data.key["val"]) == (256, 64, 64)
    train_idx, val_idx = set(data.train.indices), set(data.val.indices)
    assert not train_idx & val_idx  # disjoint: both index the same 6,000 training images
    assert data.val.indices == splits(DATA, seed=0, val=64).val.indices  # the limit does not move them
    assert data.val.indices != splits(DATA, seed=1, val=64).val.indices  # seeded
    image, _ = data.val[0]
    assert torch.equal(image, data.val[0][0])  # no augmentation: the same tensor every time
    plain = splits(DATA, limit=256, seed=0)
    assert plain.val is None and plain.key["val"] == 0
    with pytest.raises(ReshapeError, match="^val 6,000 leaves no training images"):
        splits(DATA, val=6000)


def test_training_reports_validation_and_compute(teacher):
    manifest = RunDir(teacher).require_manifest()
    last = manifest.training["last"]
    assert 0 <= last["val_top1"] <= 1 and last["train_images"] == 256 and last["steps"] == 4
    compute = manifest.training["compute"]
    assert compute["image_passes"] == 256 and compute["steps"] == 4 and compute == compute_of(teacher)
    assert [(p["method"], p["epochs"]) for p in compute["phases"]] == [("train", 1)]


# -- equal compute ------------------------------------------------------------------------------
def test_every_method_gets_the_teachers_training_plus_the_setting_epochs(teacher, tmp_path):
    """T = 1 teacher epoch, E = 2 student epochs, 256 images: every network 3 x 256 image-passes."""
    results = {name: get_method(name).fit(teacher, 9_000, tmp_path / name, SETTING)
               for name in ("snl", "senet", "deepreduce", "hybrenet_snl")}
    for name, result in results.items():
        assert result.compute["image_passes"] == 3 * 256, (name, result.compute)
        assert result.val_top1 is not None
    assert [(p["method"], p["epochs"]) for p in results["senet"].compute["phases"]] == [
        ("train", 1), ("senet:locate", 1), ("senet", 1)]
    assert [(p["method"], p["epochs"]) for p in results["deepreduce"].compute["phases"]] == [("deepreduce", 3)]
    # from scratch: the teacher's recipe for its epoch plus the student's two, with KD
    cfg = load_config(results["deepreduce"].run)
    taught = load_config(teacher)
    assert (cfg.epochs, cfg.lr, cfg.warmup_epochs, cfg.kd_alpha) == (3, taught.lr, taught.warmup_epochs, 0.5)
    # the base of hybrenet_snl: trained as the teacher was, then SNL as in the pair
    base = results["hybrenet_snl"].compute["phases"][0]
    assert (base["method"], base["epochs"], base["image_passes"]) == ("hybrenet-base", 1, 256)


def test_the_pipelines_share_one_ranking():
    p = get_method("hybrenet_senet").params(ranking="4,1,2,3")
    assert p.ranking == (4, 1, 2, 3) and p.senet.ranking is None  # its SENet step gets it at fit time
    with pytest.raises(ReshapeError, match="one criticality ranking per pipeline"):
        get_method("hybrenet_senet").params(**{"senet.ranking": "4,1,2,3"})


@pytest.mark.parametrize("factor", ["0", "-1", "nan", "inf"])
def test_a_base_factor_must_be_positive_and_finite(factor):
    with pytest.raises(ReshapeError, match="base factor must be a finite number > 0"):
        get_method("hybrenet_snl").params(factor=factor)


# -- one meaning of the options ------------------------------------------------------------------
def test_snl_command_and_frontier_with_defaults_give_the_same_network(teacher, tmp_path):
    runner = CliRunner()
    alone = runner.invoke(cli, ["snl", str(teacher), "--data", DATA, "--budget", "9000", *TINY,
                                "--out", str(tmp_path / "alone"), "--json"])
    assert alone.exit_code == 0, alone.output
    front = runner.invoke(cli, ["frontier", str(teacher), "--methods", "snl", "--budgets", "9000", *TINY,
                                "--out", str(tmp_path / "front"), "--json"])
    assert front.exit_code == 0, front.output
    a = load_file(str(tmp_path / "alone" / WEIGHTS_FILE))
    b = load_file(str(tmp_path / "front" / "snl" / "9000relus" / "seed0" / WEIGHTS_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- seeds, pairs, iso-accuracy -------------------------------------------------------------------
def test_seeds_train_a_teacher_each_and_pair_the_same_seed(teacher, tmp_path):
    result = run_frontier(teacher, ["snl", "hybrenet_snl"], [0.33], SETTING, tmp_path / "f", seeds=[0, 1])
    assert [(r["method"], r["seed"]) for r in result.rows] == [
        ("teacher", 0), ("teacher", 1), ("snl", 0), ("hybrenet_snl", 0), ("snl", 1), ("hybrenet_snl", 1)]
    seeded = RunDir(tmp_path / "f" / "teachers" / "seed1").require_manifest().training["params"]
    own = RunDir(teacher).require_manifest().training["params"]
    assert seeded["train"] == {**own["train"], "seed": 1} and seeded["data"] == {**own["data"], "seed": 1}
    assert result.rows[1]["run"] == str(tmp_path / "f" / "teachers" / "seed1")
    [pair] = result.pairs
    diffs = [100 * (result.rows[3]["top1"] - result.rows[2]["top1"]), 100 * (result.rows[5]["top1"] - result.rows[4]["top1"])]
    assert (pair["ours"], pair["baseline"], pair["n"], pair["seeds"]) == ("hybrenet_snl", "snl", 2, [0, 1])
    assert pair["diff"] == pytest.approx(sum(diffs) / 2)
    assert pair["se"] == pytest.approx(abs(diffs[0] - diffs[1]) / 2)  # stdev / sqrt(2) of two values
    assert pair["compute_equal"] and pair["compute_ratio"] == 1.0 and result.compute_equal
    summary = {r["method"]: r for r in result.summary}
    assert summary["snl"]["n"] == 2 and summary["snl"]["top1_se"] is not None
    saved = json.loads((tmp_path / "f" / "results.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["pairs"] == result.pairs and saved["version"] == 2


def test_paired_statistics_by_hand():
    def row(method, seed, top1, passes=100):
        return {"method": method, "label": "b", "budget": 10, "fraction": 0.1, "seed": seed, "top1": top1,
                "reachable": True, "family": "x", "run": "r", "relus": 10, "macs": 1, "within_budget": True,
                "compute": {"image_passes": passes}}

    # diffs 2, 4, 6 points: mean 4, stdev 2, SE 2 / sqrt(3) = 1.1547; 4 > 2 x 1.1547: ours better
    points = [row("snl", s, 0.5) for s in range(3)] + [row("hybrenet_snl", s, 0.5 + d) for s, d in
                                                      enumerate((0.02, 0.04, 0.06))]
    [pair] = compare.paired(points)
    assert pair["diff"] == pytest.approx(4.0) and pair["se"] == pytest.approx(2 / math.sqrt(3))
    assert pair["verdict"] == "ours better"
    # one seed: the binomial error of two accuracies on 1,000 test images, named as such
    [one] = compare.paired([points[0], points[3]], tests=1000)
    assert one["se"] == pytest.approx(100 * math.sqrt((0.5 * 0.5 + 0.52 * 0.48) / 1000))
    assert one["se_kind"].startswith("binomial") and one["verdict"] == "within noise"
    # unequal training is never a verdict
    [unequal] = compare.paired([points[0], {**points[3], "compute": {"image_passes": 110}}])
    assert unequal["verdict"] == "not compared: unequal training" and not unequal["compute_equal"]


def test_iso_accuracy_relus_by_hand():
    summary = [
        {"method": "snl", "label": "a", "relus": 1000, "top1": 0.70, "reachable": True},
        {"method": "hybrenet_snl", "label": "a", "relus": 1000, "top1": 0.60, "reachable": True},
        {"method": "hybrenet_snl", "label": "b", "relus": 4000, "top1": 0.80, "reachable": True},
        {"method": "snl", "label": "c", "relus": 9000, "top1": 0.90, "reachable": True},
        {"method": "snl", "label": "d", "relus": 500, "top1": 0.50, "reachable": True}]
    iso = {i["label"]: i for i in compare.iso_relus(summary)}
    # 70% lies halfway between (1000, 60%) and (4000, 80%) in accuracy: exp(mean of the logs) = 2,000
    assert iso["a"]["relus"] == pytest.approx(2000) and iso["a"]["kind"] == "interpolated"
    assert iso["a"]["ratio"] == pytest.approx(2.0) and iso["a"]["fewer"] == pytest.approx(0.5)
    assert (iso["c"]["relus"], iso["c"]["kind"]) == (None, "not reached")
    assert (iso["d"]["relus"], iso["d"]["kind"], iso["d"]["ratio"]) == (1000, "at most", 2.0)
