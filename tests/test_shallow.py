"""reshape shallow: block selection on hand-made scores, then end to end on fashion-mnist-mini."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from torch import nn

from reshape.budget.sensitivity import linearize_groups
from reshape.cli import cli
from reshape.errors import ReshapeError
from reshape.models import build
from reshape.runs import load_run
from reshape.methods.shallow import LINEARIZED_DIR, BlockScore, linearize_spec, select

DATA = ["--data", "fashion-mnist-mini"]
FAST = ["--epochs", "2", "--batch-size", "128", "--limit", "256"]  # compact: 1 epoch before and after merging


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def parse(output: str) -> dict:
    return json.loads(output[output.index("{"):])


# score = sensitivity / relus_saved: a 0.1, b 0.5, c 0.05, d 1.0
SCORES = [BlockScore("a", 10.0, 100, 500, 300, "compact"), BlockScore("b", 100.0, 200, 400, 500, "compact"),
          BlockScore("c", 2.0, 40, 300, 100, "compact"), BlockScore("d", 50.0, 50, 600, 200, "compact")]
TOTAL = {"relus": 1000, "macs": 10_000}


def names(chosen: list[BlockScore]) -> list[str]:
    return [s.block for s in chosen]


def test_select_takes_blocks_in_score_order_until_the_target():
    assert names(select(SCORES, 1000, **TOTAL)) == []
    assert names(select(SCORES, 960, **TOTAL)) == ["c"]
    assert names(select(SCORES, 900, **TOTAL)) == ["c", "a"]  # 1000 - 40 - 100 = 860
    assert names(select(SCORES, 700, **TOTAL)) == ["c", "a", "b"]  # 660
    assert names(select(SCORES, 610, **TOTAL)) == ["c", "a", "b", "d"]  # the floor, 610


def test_select_adds_mac_saving_blocks_for_a_mac_target():
    # c and a meet 900 ReLUs with 10000 - 200 - 200 = 9600 MACs; b adds MACs, d saves 400
    assert names(select(SCORES, 900, 9600, **TOTAL)) == ["c", "a"]
    assert names(select(SCORES, 900, 9500, **TOTAL)) == ["c", "a", "d"]


def test_unreachable_targets_name_the_reachable_minimum():
    with pytest.raises(ReshapeError, match="leaves 610 of 1,000 ReLUs"):
        select(SCORES, 609, **TOTAL)
    with pytest.raises(ReshapeError, match="the fewest is 9,200 of 10,000 MACs"):  # a, c, d merged
        select(SCORES, 900, 9199, **TOTAL)
    exact = [BlockScore("e", 1.0, 10, 100, 300, "exact")]
    with pytest.raises(ReshapeError, match="in exact mode.*set mode to compact"):
        select(exact, 990, 999, relus=1000, macs=1000)
    with pytest.raises(ReshapeError, match="leave 1,200 MACs, above the target 1,100"):
        select(exact, 990, 1100, relus=1000, macs=1000)


def test_a_group_of_relu_layers_is_linearized_at_once(tiny_spec):
    torch.manual_seed(0)
    model = build(tiny_spec).eval()
    for m in model.modules():  # timm zero-inits each block's last BN: give the branches a say
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
    batches = [torch.randn(8, 1, 16, 16)]
    layers = ["layer1.0.act1", "layer2.0.act1"]
    alone = linearize_groups(model, {n: [n] for n in layers}, batches)
    both = linearize_groups(model, {"both": layers}, batches)["both"]
    assert set(alone) == set(layers) and both > 0 and both != pytest.approx(max(alone.values()))
    assert all(isinstance(model.get_submodule(n), nn.ReLU) for n in layers)  # put back


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "teacher"
    res = run("train", "resnet18", *DATA, "--width", "4", *FAST, "--epochs", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def compact(teacher):
    out = teacher.parent / "compact"
    res = run("shallow", str(teacher), "--relus", "0.7", *DATA, *FAST, "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    return out, parse(res.output)


def test_compact_run_has_fewer_relus_and_macs_and_counts_agree(compact):
    out, result = compact
    built = result["built"]
    before, after = built["before"], built["after"]
    assert result["budget"] == built["relu_target"] == 18_995 and before["relus"] == 27_136  # int(0.7 * 27,136)
    assert after["relus"] == result["relus"] <= 0.7 * before["relus"] and after["macs"] < before["macs"]
    assert after["nonlinear_depth"] == before["nonlinear_depth"] - len(built["blocks"])
    assert json.loads((out / "run.json").read_text())["summary"] == result
    counted = json.loads(run("count", str(out), "--json").output)
    assert (counted["relus"], counted["macs"], counted["nonlinear_depth"]) == \
        (after["relus"], after["macs"], after["nonlinear_depth"])
    evaluated = parse(run("eval", str(out), "--json").output)
    assert evaluated["top1"] == pytest.approx(after["top1"]) and evaluated["relus"] == after["relus"]
    assert "before" in run("shallow", str(out.parent / "teacher"), "--relus", "0.7", *DATA, *FAST,
                           "--out", str(out)).output  # the table, read back from the finished run


def test_resuming_a_finished_run_retrains_nothing(compact):
    out, result = compact
    checkpoints = sorted(out.rglob("checkpoint.pt"))
    stamps = [p.stat().st_mtime_ns for p in checkpoints]
    res = run("shallow", str(out.parent / "teacher"), "--relus", "0.7", *DATA, *FAST, "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    assert parse(res.output) == {**result, "cached": True}
    assert len(checkpoints) == 2 and [p.stat().st_mtime_ns for p in checkpoints] == stamps


def test_exact_merge_equals_the_fine_tuned_linearized_model(compact, tmp_path):
    src, planned = compact
    out = tmp_path / "exact"
    res = run("shallow", str(src.parent / "teacher"), "--relus", "0.7", "--mode", "exact", *DATA, *FAST,
              "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    result = parse(res.output)["built"]
    assert result["blocks"] == planned["built"]["blocks"]  # the same ReLU target picks the same blocks
    assert all(m["max_rel_error"] < 1e-4 and m["mode"] == "exact" for m in result["merges"])
    assert result["after"]["relus"] == planned["built"]["after"]["relus"]
    assert result["after"]["macs"] > result["before"]["macs"]  # exact K x K merges cost more MACs
    assert result["after"]["top1"] == pytest.approx(result["linearized"]["top1"], abs=2e-3)  # argmax ties aside
    _, merged = load_run(out)
    _, linearized = load_run(out / LINEARIZED_DIR)
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        want, got = linearized.eval()(x), merged.eval()(x)
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-4


@pytest.mark.parametrize("args, message", [
    # width 4 at 28x28: stem 4x28x28 = 3,136; each block's inner and post-add ReLUs 4x28x28, 8x14x14,
    # 16x7x7, 32x4x4 (two blocks a stage): 27,136 in all, of which the inner 12,000 can go
    (["--relus", "1k"], "ReLU target 1,000 is out of reach: merging every block leaves 15,136 of 27,136 ReLUs"),
    (["--relus", "0.5"], "ReLU target 13,568 is out of reach"),  # a fraction: 0.5 x 27,136
    (["--relus", "1"], "ReLU target 1 is out of reach"),  # a count, not 100%
    (["--relus", "0.5x"], "'0.5x' is neither a count"),
])
def test_bad_targets(teacher, tmp_path, args, message):
    res = run("shallow", str(teacher), *DATA, *FAST, "--out", str(tmp_path / "x"), *args)
    assert res.exit_code in (1, 2) and "Traceback" not in res.output
    assert message in res.output


@pytest.mark.parametrize("args, changed", [
    (["--relus", "0.8"], "--relus: 18995 -> 21708"),  # named as the options the user gave
    (["--relus", "0.7", "--mode", "exact"], '--mode: "compact" -> "exact"'),
    (["--relus", "0.7", "--k", "1"], "--k: 3 -> 1"),
])
def test_a_run_directory_keeps_its_settings(compact, args, changed):
    out, _ = compact
    res = run("shallow", str(out.parent / "teacher"), *args, *DATA, *FAST, "--out", str(out))
    assert res.exit_code == 1 and "other settings" in res.output and changed in res.output


def test_force_starts_a_run_directory_over(compact, tmp_path):
    out, _ = compact
    other = tmp_path / "other"
    res = run("shallow", str(out.parent / "teacher"), "--relus", "0.8", *DATA, *FAST, "--out", str(other))
    assert res.exit_code == 0, res.output
    res = run("shallow", str(out.parent / "teacher"), "--relus", "0.7", *DATA, *FAST, "--out", str(other),
              "--force", "--json")
    assert res.exit_code == 0, res.output
    assert parse(res.output)["budget"] == 18_995 and not parse(res.output)["cached"]


def test_linearize_spec_removes_the_inner_relus_of_the_chosen_blocks(tiny_spec):
    # tiny_spec (1x16x16, one block per stage): inner act1 of each block has the same size as
    # its act2 (4x16x16, 8x8x8, 8x4x4, 16x2x2 = 1,024 / 512 / 128 / 64); stem 4x16x16 = 1,024.
    torch.manual_seed(0)
    model = build(tiny_spec).eval()
    total = 1_024 + 2 * (1_024 + 512 + 128 + 64)
    spec, blocks = linearize_spec(tiny_spec, model, total - 600, [torch.randn(8, 1, 16, 16)])
    inner = {"layer1.0": 1_024, "layer2.0": 512, "layer3.0": 128, "layer4.0": 64}
    assert {l.name for l in spec.relus} == {f"{b}.act1" for b in blocks}
    assert all(l.state == "removed" for l in spec.relus)
    assert sum(inner[b] for b in blocks) >= 600 and measured_relus(spec) == total - sum(inner[b] for b in blocks)


def measured_relus(spec) -> int:
    from reshape.accounting import count

    return count(build(spec), spec.input_shape).relus
