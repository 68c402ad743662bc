"""DeepReShape engine: HybReNet shapes, DeepReDuce operators, O(1) synthesis and its CLI.

Counts are derived by hand in the comments (CIFAR stem, 32x32: stem and stage 1 at 32x32,
stage s at (32 / 2^(s-1))^2) and checked against ``reshape.count`` on the built model.
"""
from __future__ import annotations

import json
from fractions import Fraction

import pytest
import timm
import torch
from click.testing import CliRunner

from reshape import deepreduce, tables
from reshape.cli import cli
from reshape.accounting import count
from reshape.analytic import largest_within, relu_sizes, spec_macs, stage_relus, total_relus
from reshape.deepreshape import equalized_multipliers, smallest, stage_shares, synthesize
from reshape.errors import ReshapeError
from reshape.models import apply_preset, build, spec_for, spec_from_timm, spec_of
from reshape.models.hybrenet import hrn_widths, hybrenet, parse_hrn
from reshape.spec import ArchSpec, ReluLayer


def measured(spec: ArchSpec):
    with torch.device("meta"):
        model = build(spec)
    return count(model, spec.input_shape)


def cifar100(backbone: str) -> ArchSpec:
    return apply_preset(spec_from_timm(backbone), tables.dataset_preset("cifar100"))


# -- HybReNet shapes -----------------------------------------------------------------------------
def test_hrn_5x5x3x_m16_counts_343040_relus_with_the_stem():
    with torch.device("meta"):
        model = timm.create_model("hybrenet_5x5x3x_m16", num_classes=100)
    assert spec_of(model).widths == (16, 80, 400, 1200) and model.fc.out_features == 100
    result = count(model, (3, 32, 32))
    # stem 16*32*32; stage s: 2 blocks * 2 ReLU layers * width * side^2
    assert [s.relus for s in result.stages] == [16_384, 65_536, 81_920, 102_400, 76_800, 0]
    assert result.relus == 343_040


def test_named_bottleneck_hybrenet_and_analytic_counts_agree():
    with torch.device("meta"):
        model = timm.create_model("hybrenet50_2x5x3x_m32")
    spec = spec_of(model)
    assert spec.block == "bottleneck" and spec.depths == (3, 4, 6, 3)
    assert spec.widths == (32, 64, 320, 960) and spec.stem.width == 32
    result = count(model, (3, 32, 32))
    assert result.relus == total_relus(spec) and result.macs == spec_macs(spec)
    # layer2.0.act1 runs before the stride (64 ch at 32x32); act2 after it; act3 is 4x wide
    sizes = relu_sizes(spec)
    assert (sizes["layer2.0.act1"], sizes["layer2.0.act2"], sizes["layer2.0.act3"]) == (
        64 * 32 * 32, 64 * 16 * 16, 256 * 16 * 16)


def test_analytic_stage_counts_honour_removed_and_masked_layers():
    spec = deepreduce.thin(hybrenet(cifar100("resnet18"), "HRN-5x5x3x-m8"), [4]).with_relus([
        ReluLayer("layer2.0.act1", "masked", kept=100, granularity="neuron"),
        ReluLayer("layer3.0.act1", "masked", kept=3 * 64, granularity="channel"),  # 3 channels of 8x8
    ])
    result = count(build(spec), (3, 32, 32))  # on CPU: masks need real buffers
    assert {s.name: s.relus for s in result.stages if s.name != "head"} == stage_relus(spec)
    # layer2: 3 layers of 40*16*16 + 100; layer3: 3 of 200*8*8 + 192; layer4 thinned: 2 of 600*4*4
    assert stage_relus(spec)["layer2"] == 3 * 10_240 + 100 and stage_relus(spec)["layer4"] == 19_200


@pytest.mark.parametrize("text, parsed", [
    ("HRN-5x5x3x", ((5, 5, 3), None)),
    ("hrn-2x5x3x-m32", ((2, 5, 3), 32)),
    ("HRN-4x4x", ((4, 4), None)),
])
def test_parse_hrn(text, parsed):
    assert parse_hrn(text) == parsed


@pytest.mark.parametrize("text", ["HRN-5x5x3", "5x5x3x", "HRN-0x5x3x", "HRN-5x5x3x-m0", "HRN-5.5x5x3x", "HRN-"])
def test_malformed_hrn_shows_the_expected_form(text):
    with pytest.raises(ReshapeError, match=r"malformed HybReNet shape .*expected HRN-axbxcx"):
        parse_hrn(text)


def test_hybrenet_needs_a_base_width_and_matching_stage_count():
    base = cifar100("resnet18")
    with pytest.raises(ReshapeError, match="needs a base width"):
        hybrenet(base, "HRN-5x5x3x")
    with pytest.raises(ReshapeError, match="expected 3"):
        hybrenet(base, "HRN-5x5x-m16")
    assert hybrenet(base, "HRN-5x5x3x", base_width=8).widths == (8, 40, 200, 600)


# -- DeepReDuce -----------------------------------------------------------------------------------
# ResNet18 CIFAR: stem 65,536; stages 262,144 / 131,072 / 65,536 / 32,768 (each: 4 layers).
PUBLISHED = {
    "230k": 229_376,  # stages 2-4: 131,072 + 65,536 + 32,768
    "115k": 114_688,  # thinned: half of each stage
    "57k": 57_344,    # alpha 0.5: widths halve
    "49k": 49_152,    # (131,072 + 65,536) / 2 / 2
    "29k": 28_672,    # stem stride 2: maps / 4
    "14k": 14_336,    # depths 2,1,1,1: stages 2-4 halve -> 114,688 / 2 / 4
    "12k": 12_288,    # ... stage 4 culled too: 14,336 - 2,048
    "7k": 7_168,      # ... alpha 0.5
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_deepreduce_models_to_the_exact_relu(name):
    spec = deepreduce.published(name)
    assert measured(spec).relus == PUBLISHED[name] == tables.load("deepreduce_configs")[name]["relus"]
    assert total_relus(spec) == PUBLISHED[name]


def test_operators_edit_only_relu_states_widths_stride_depths():
    base = cifar100("resnet18")
    culled = deepreduce.cull(base, [1])
    assert culled.relu_state("act1").state == "removed"
    assert culled.relu_state("layer1.1.act2").state == "removed"
    assert culled.relu_state("layer2.0.act1").state == "kept"
    thinned = deepreduce.thin(base)
    assert {l.name for l in thinned.relus} == {f"layer{s}.{b}.act2" for s in range(1, 5) for b in range(2)}
    bottleneck = deepreduce.thin(cifar100("resnet50"), [2])
    assert {l.name for l in bottleneck.relus} == {f"layer2.{b}.act3" for b in range(4)}
    assert deepreduce.scale_width(base, 0.3).widths == (19, 38, 77, 154)  # round half up
    shallow = deepreduce.set_depths(thinned, [2, 1, 1, 1])
    assert shallow.depths == (2, 1, 1, 1) and "layer2.1.act2" not in {l.name for l in shallow.relus}
    with pytest.raises(ReshapeError, match="stages are numbered 1..4"):
        deepreduce.cull(base, [5])
    masked = base.with_relus([ReluLayer("layer1.0.act1", "masked", kept=3, granularity="neuron")])
    with pytest.raises(ReshapeError, match="reshape first, then mask"):
        deepreduce.scale_width(masked, 0.5)



def fashion16() -> ArchSpec:
    """ResNet18 at width 16 on 1x28x28: stem 12,544, stages 50,176 / 25,088 / 12,544 / 8,192 ReLUs."""
    return spec_for("resnet18", "fashion-mnist", 16)


def test_widest_scales_every_width_into_the_budget():
    # 108,544 ReLUs at w = 16 and linear in the stage-1 width w: 6,784 per unit of w.
    spec, alpha = deepreduce.widest(fashion16(), 27_136)
    assert (alpha, spec.widths, measured(spec).relus) == (0.25, (4, 8, 16, 32), 27_136)
    spec, alpha = deepreduce.widest(fashion16(), 27_135)
    assert (alpha, measured(spec).relus) == (3 / 16, 20_352)
    with pytest.raises(ReshapeError, match="narrowest width-scaled network .6,784 ReLUs"):
        deepreduce.widest(fashion16(), 6_783)


def test_fit_budget_spends_the_most_relus_among_rungs_with_alpha_at_least_half():
    # 25% = 27,136. Cull S1 (stem + stage 1 = 62,720 go) leaves 2,864 per w -> w = 9, 25,776,
    # alpha 0.5625; + thin leaves 1,432 per w -> w = 16 (alpha 1), only 22,912: cull wins.
    spec, edits = deepreduce.fit_budget(fashion16(), 27_136, (1, 4, 2, 3))
    assert edits == {"cull": [1], "thin": False, "stem_stride": 1, "alpha": 0.5625}
    assert measured(spec).relus == 25_776
    # 2% = 2,170: no rung keeps alpha >= 0.5. Cull S1+S4, thin, stem stride 2 leaves stage 2
    # (2w x 7 x 7 x 2 layers) + stage 3 (4w x 4 x 4 x 2) = 324 per w -> w = 6 (1,944), wider
    # than cull S1 + thin + stride 2 (388 per w -> w = 5).
    spec, edits = deepreduce.fit_budget(fashion16(), 2_170, (1, 4, 2, 3))
    assert edits == {"cull": [1, 4], "thin": True, "stem_stride": 2, "alpha": 0.375}
    assert measured(spec).relus == 1_944

# -- synthesis ------------------------------------------------------------------------------------
def test_synthesis_180k_cifar100_by_hand():
    spec, why = synthesize("resnet18", "cifar100", 180_000)
    # HRN-5x5x3x: R(m) = 343,040 / 16 * m = 21,440 m -> m = 8 (171,520); no grid reaches 98%,
    # so stage 3 (most critical, 2 blocks * 2 layers * 8*8 = 256 ReLUs per channel) gets
    # (180,000 - 171,520) // 256 = 33 channels: 171,520 + 33 * 256 = 179,968.
    assert why.regime == "relu-rich" and why.base_width == 8 and why.topup == (3, 33)
    assert spec.widths == (8, 40, 233, 600) and spec.stem.width == 8 and not spec.relus
    assert why.relus == measured(spec).relus == 179_968
    assert any("published HRN-5x5x3x" in r for r in why.reasons)
    assert any("largest m with ReLUs <= 180,000 is 8" in r for r in why.reasons)


def test_low_budget_culls_least_critical_stage_and_thins():
    spec, why = synthesize("resnet18", "cifar100", 25_000)
    assert why.regime == "relu-starved" and why.culled == (1,) and why.thinned
    assert stage_relus(spec)["stem"] == stage_relus(spec)["layer1"] == 0
    # a measured ranking decides what is culled (and, below, the multipliers: stage 1 now keeps
    # its ReLUs at 32x32, so the family's smallest network needs about 48k)
    _, why = synthesize("resnet18", "cifar100", 50_000, criticality=[4, 1, 2, 3])
    assert why.culled == (4,) and why.stage_relus["layer4"] == 0


def test_published_ranking_gives_the_published_multipliers_exactly():
    # 5x5x3x: stage ReLU shares 1 : 5/4 : 25/16 : 75/64, ascending along 1,4,2,3
    assert equalized_multipliers((5, 5, 3), (1, 4, 2, 3), culled=0) == (5, 5, 3)
    assert stage_shares((5, 5, 3)) == (1, Fraction(5, 4), Fraction(25, 16), Fraction(75, 64))
    # 2x5x3x: the culled stage 1 has the largest share (1), then 4, 2, 3 ascending
    assert equalized_multipliers((2, 5, 3), (1, 4, 2, 3), culled=1) == (2, 5, 3)
    _, why = synthesize("resnet18", "cifar100", 180_000)
    assert why.multipliers == why.published_multipliers == (5, 5, 3)


def test_a_measured_ranking_puts_the_least_relus_where_criticality_is_least():
    # Fashion-MNIST (docs/results.md): stage 4 least critical. Shares S4 < S1 < S2 < S3 with the
    # same levels: f1 = 4 * (5/4) / (75/64) = 64/15, f2 = 5, f3 = 4 * 1 / (25/16) = 64/25.
    assert equalized_multipliers((5, 5, 3), (4, 1, 2, 3), 0) == (Fraction(64, 15), 5, Fraction(64, 25))
    # low-budget family: stage 4 (culled) takes stage 1's published share 1, the others
    # 15/32 < 1/2 < 5/8 along 1, 2, 3: f1 = 4 * (1/2) / (15/32) = 64/15, f2 = 5, f3 = 4 / (5/8) = 32/5
    assert equalized_multipliers((2, 5, 3), (4, 1, 2, 3), 1) == (Fraction(64, 15), 5, Fraction(32, 5))
    spec, why = synthesize("resnet18", "cifar100", 300_000, criticality=[4, 1, 2, 3])
    assert why.regime == "relu-rich" and why.multipliers == (64 / 15, 5, 64 / 25)
    assert spec.name.startswith("HRN-4.27x5x2.56x-m")
    layers = {k: v for k, v in why.stage_relus.items() if k.startswith("layer")}
    assert sorted(layers, key=layers.get) == ["layer4", "layer1", "layer2", "layer3"]
    assert why.relus == measured(spec).relus and 0.98 * 300_000 <= why.relus <= 300_000


def test_non_integer_widths_round_half_up():
    assert hrn_widths((Fraction(64, 15), 5, Fraction(64, 25)), 3) == (3, 13, 64, 164)  # 12.8, 163.84
    assert hrn_widths((2, 5, 3), Fraction(1, 4)) == (1, 1, 3, 8)  # 0.25 -> 1 (at least one), 2.5 -> 3
    assert hybrenet(cifar100("resnet18"), (5, 5, 3), Fraction(3, 2)).name == "HRN-5x5x3x-m1.5"


def test_a_narrow_backbone_gets_the_same_shape_scaled_to_its_width():
    # The regime and the width unit come from the backbone as given: ResNet18 at width 8 on
    # Fashion-MNIST (54,272 ReLUs) gets exactly 1/8 of what the full-width one gets.
    narrow = spec_for("resnet18", "fashion-mnist", 8)
    wide, why_wide = synthesize("resnet18", "fashion-mnist", 280_640, criticality=[1, 4, 2, 3])
    small, why = synthesize(narrow, "fashion-mnist", 35_080, criticality=[1, 4, 2, 3])
    assert (why_wide.regime, why.regime) == ("relu-rich", "relu-rich") and why.backbone_relus == 54_272
    assert wide.widths == (16, 80, 400, 1200) and small.widths == (2, 10, 50, 150)
    assert (why.unit, why.base_width, why.relus * 8) == (0.125, 2, why_wide.relus)
    # 50% of the narrow teacher: the 5x family's smallest network (stem 2 wide: 28,792 ReLUs)
    # does not fit, so the next regime takes it; nothing is unreachable
    _, half = synthesize(narrow, "fashion-mnist", 27_136, criticality=[1, 4, 2, 3])
    assert half.regime == "relu-lean" and any("next regime" in r for r in half.reasons)
    assert 0.98 * 27_136 <= half.relus <= 27_136


def test_the_first_relu_layer_is_two_channels_per_input_channel_wide():
    narrow = spec_for("resnet18", "fashion-mnist", 8)
    floor = smallest(narrow, "fashion-mnist", [4, 1, 2, 3])  # stage 4 culled: the stem keeps its ReLU
    assert floor.stem.width == floor.widths[0] == 2 and total_relus(floor) == 10_192
    with pytest.raises(ReshapeError, match="has 10,192 ReLUs"):
        synthesize(narrow, "fashion-mnist", 10_000, criticality=[4, 1, 2, 3])


def test_round_to_grid_is_kept_when_it_lands_within_2_percent():
    budget = 21_440 * 48 + 5_000  # m = 48 is on the grid of 8 and within 0.5% of B
    _, why = synthesize("resnet18", "cifar100", budget)
    assert (why.base_width, why.grid, why.topup) == (48, 8, None)
    _, why = synthesize("resnet18", "cifar100", budget, round_to=32)
    assert why.base_width == 48 and why.grid == 16


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50"])
@pytest.mark.parametrize("dataset", ["cifar100", "tinyimagenet", "imagenet"])
def test_synthesis_meets_budget_within_2_percent_and_counts_agree(backbone, dataset):
    budgets = [int(b) for b in torch.logspace(4.5, 7, 40).tolist()]
    specs = []
    for budget in budgets:
        try:
            spec, why = synthesize(backbone, dataset, budget)
        except ReshapeError as exc:
            assert "smallest network of its family" in str(exc)
            continue
        assert 0.98 * budget <= why.relus <= budget, (budget, spec.name)
        specs.append(spec)
    assert len(specs) >= 20
    for spec in (specs[0], specs[-1]):  # exact agreement with the model-level accounting
        result = measured(spec)
        assert (result.relus, result.macs) == (total_relus(spec), spec_macs(spec))
        assert {s.name: s.relus for s in result.stages if s.name != "head"} == stage_relus(spec)


def test_mac_budget_picks_the_largest_width_meeting_both():
    spec, why = synthesize("resnet18", "cifar100", 180_000, macs=200_000_000)
    assert why.macs <= 200_000_000 and why.relus <= 180_000 and why.topup is None
    wider = synthesize("resnet18", "cifar100", 180_000, macs=why.macs + 10**8)[1]
    assert wider.base_width > why.base_width


@pytest.mark.parametrize("kwargs, message", [
    # HRN-2x5x3x, stage 1 culled, thinned, m = 1: 2*(2*256) + 2*(10*64) + 2*(30*16) = 3,264; m = 4
    (dict(backbone="resnet18", dataset="cifar100", relus=10_000), "has 13,056 ReLUs"),
    (dict(backbone="resnet18", dataset="cifar100", relus=180_000, macs=1000), "raise the budget"),
    (dict(backbone="vgg16", dataset="cifar100", relus=180_000), "supported families: resnet18"),
    (dict(backbone="resnet18", dataset="mnist", relus=50_000), "pass a measured ranking"),
    (dict(backbone="resnet18", dataset="cifar100", relus=50_000, criticality=[1, 2]), "each of the stages 1..4"),
])
def test_budget_and_input_errors(kwargs, message):
    with pytest.raises(ReshapeError, match=message):
        synthesize(**kwargs)


def test_largest_within_is_exact_for_quadratics():
    f = lambda x: 3 * x * x + 7 * x + 11  # noqa: E731
    for limit in range(0, 2_000, 37):
        best = max((x for x in range(1, 40) if f(x) <= limit), default=0)
        assert largest_within(f, limit, 1) == best


# -- CLI ------------------------------------------------------------------------------------------
def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_cli_spec_counts_the_same_as_reshape_count(tmp_path):
    out = tmp_path / "hrn.json"
    res = run("synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--relus", "180k",
              "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output)
    counted = json.loads(run("count", str(out), "--json").output)
    assert printed["count"]["relus"] == counted["relus"] == 179_968
    assert printed["count"]["macs"] == counted["macs"] and printed["cost"] == counted["cost"]
    assert [s["relus"] for s in printed["count"]["stages"]] == [s["relus"] for s in counted["stages"]]
    table = run("synthesize", "--backbone", "resnet18", "--dataset", "cifar100", "--relus", "180000")
    assert "179,968" in table.output and "why this shape" in table.output


def test_cli_sweep_writes_one_spec_per_budget_and_a_summary(tmp_path):
    res = run("synthesize", "--backbone", "resnet34", "--dataset", "cifar100",
              "--sweep", "50k,100k,0.18M,300000", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert [r["budget"] for r in rows] == [50_000, 100_000, 180_000, 300_000]
    for row in rows:
        spec = ArchSpec.from_json((tmp_path / row["spec"]).read_text())
        assert total_relus(spec) == row["relus"] and 0.98 <= row["ratio"] <= 1


def test_design_counts_prices_and_saves_what_the_rule_makes(tmp_path):
    """``reshape.synthesis.design``: one budget's spec with its exact count and cost, saved to ``out``."""
    from reshape.cost import estimate
    from reshape.synthesis import design

    made = design("resnet18", "cifar100", 180_000, out=tmp_path / "hrn.json")
    spec, why = synthesize("resnet18", "cifar100", 180_000)
    assert made.spec == spec == ArchSpec.from_json((tmp_path / "hrn.json").read_text())
    assert made.explanation == why and made.budget == 180_000
    assert made.count.relus == measured(spec).relus == 179_968
    assert made.cost == estimate(made.count.relus, made.count.macs, made.count.nonlinear_depth, "delphi")
    assert set(made.to_dict()) == {"spec", "explanation", "count", "cost"} and "layers" not in made.to_dict()["count"]
    narrow = design("resnet18", "fashion-mnist-mini", 10_854, width=8, ranking=[1, 4, 2, 3])
    assert narrow.spec == synthesize(spec_for("resnet18", "fashion-mnist-mini", 8), "fashion-mnist-mini", 10_854,
                                     criticality=[1, 4, 2, 3])[0]


def test_sweep_returns_its_designs_and_writes_them_with_a_summary(tmp_path):
    from reshape.synthesis import SUMMARY_FILE, sweep

    done = sweep(tmp_path / "s", "resnet18", "cifar100", [25_000, 50_000])
    assert [d.budget for d in done.designs] == [25_000, 50_000]
    assert [f.name for f in done.files] == ["resnet18-cifar100-25000.json", "resnet18-cifar100-50000.json"]
    assert json.loads((tmp_path / "s" / SUMMARY_FILE).read_text()) == done.rows
    for d, f in zip(done.designs, done.files):
        assert ArchSpec.from_json(f.read_text()) == d.spec and d.count.relus <= d.budget
    # a budget that cannot be met names itself, and nothing is claimed or written
    with pytest.raises(ReshapeError, match="budget 5,000: .*smallest network"):
        sweep(tmp_path / "t", "resnet18", "cifar100", [5_000, 50_000])
    assert not (tmp_path / "t").exists()
    # the width is part of what a sweep folder holds: another width is refused, not mixed in
    sweep(tmp_path / "w", "resnet18", "cifar100", [25_000], width=32)
    with pytest.raises(ReshapeError, match="width"):
        sweep(tmp_path / "w", "resnet18", "cifar100", [25_000])


@pytest.mark.parametrize("args, code, message", [
    (["--relus", "5k"], 1, "smallest network of its family"),
    ([], 2, "exactly one of --relus"),
    (["--sweep", "50k,100k"], 2, "give --out DIR"),
    (["--relus", "18x"], 2, "must look like 180k"),
])
def test_cli_errors(args, code, message):
    res = run("synthesize", "--backbone", "resnet18", "--dataset", "cifar100", *args)
    assert res.exit_code == code and message in res.output
    assert "Traceback" not in res.output


def test_registered_hybrenet_names_resolve_to_their_spec():
    spec = spec_for("hybrenet_5x5x3x_m16", "cifar100")
    assert spec.widths == (16, 80, 400, 1200) and measured(spec).relus == 343_040
