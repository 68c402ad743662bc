"""Wide ResNets: any-stage pre-activation specs, the WRN family, and SNL's counting convention."""
from __future__ import annotations

import json

import pytest
import timm
import torch
from click.testing import CliRunner

from reshape import deepreduce
from reshape.analytic import relu_sizes, relus_snl, snl_omitted, spec_macs, stage_relus, total_relus
from reshape.cli import cli
from reshape.accounting import count
from reshape.errors import ReshapeError, SpecError
from reshape.layers import MaskedReLU
from reshape.methods import Setting, get_method, setting_config, setting_splits
from reshape.methods.senet import SENetParams
from reshape.models import apply_preset, build, build_for_count, narrow, spec_of, wrn_spec
from reshape.runs import load_run, load_trained
from reshape.spec import ArchSpec, ReluLayer, Stage, Stem
from reshape.tables import dataset_preset
from reshape.train import fit

# Standard pre-activation WRN-d-k at 32x32 (n = (d-4)/6 blocks per stage, widths 16k/32k/64k).
# A block has 2 ReLUs: act1 on its input (before the stride), act2 after conv1. Per stage:
# block 0's act1 on the previous width at the previous resolution, then 2n-1 layers of
# width x side^2; then the final BN-ReLU on 64k x 8 x 8.
# WRN-22-8 (n=3; 128/256/512): stage1 16*1024 + 5*128*1024 = 671,744; stage2 128*1024
# + 5*256*256 = 458,752; stage3 256*256 + 5*512*64 = 229,376; final 512*64 = 32,768.
WRN22_8 = (16 * 1024 + 5 * 128 * 1024) + (128 * 1024 + 5 * 256 * 256) + (256 * 256 + 5 * 512 * 64) + 512 * 64
# WRN-16-8 (n=2): stage1 16*1024 + 3*128*1024 = 409,600; stage2 128*1024 + 3*256*256 = 327,680;
# stage3 256*256 + 3*512*64 = 163,840; final 32,768.
WRN16_8 = (16 * 1024 + 3 * 128 * 1024) + (128 * 1024 + 3 * 256 * 256) + (256 * 256 + 3 * 512 * 64) + 512 * 64
# WRN-28-10 (n=4; 160/320/640): stage1 16*1024 + 7*160*1024 = 1,163,264; stage2 160*1024
# + 7*320*256 = 737,280; stage3 320*256 + 7*640*64 = 368,640; final 640*64 = 40,960.
WRN28_10 = (16 * 1024 + 7 * 160 * 1024) + (160 * 1024 + 7 * 320 * 256) + (320 * 256 + 7 * 640 * 64) + 640 * 64


def test_hand_derived_totals():
    assert (WRN22_8, WRN16_8, WRN28_10) == (1_392_640, 933_888, 2_310_144)


@pytest.mark.parametrize("name, depth, widen, relus, final", [
    ("wrn16_8", 16, 8, WRN16_8, 512 * 64),
    ("wrn22_8", 22, 8, WRN22_8, 512 * 64),
    ("wrn28_10", 28, 10, WRN28_10, 640 * 64),
])
def test_wrn_counts_both_conventions(name, depth, widen, relus, final):
    spec = spec_of(timm.create_model(name, num_classes=100))
    assert spec == wrn_spec(depth, widen, num_classes=100)
    measured = count(build_for_count(spec), spec.input_shape)
    assert measured.relus == total_relus(spec) == relus
    # SNL's WideResNet has no final ReLU (BN straight into pooling): its count leaves out 64k x 8 x 8.
    assert snl_omitted(spec) == "final_act" and relus_snl(spec) == relus - final
    assert measured.macs == spec_macs(spec)
    assert {s.name: s.relus for s in measured.stages} == stage_relus(spec)


def test_wrn22_8_is_snl_published_count_and_snl_network():
    spec = wrn_spec(22, 8, num_classes=100)
    assert relus_snl(spec) == 1_359_872 == 1_392_640 - 512 * 8 * 8
    # SNL's network itself is WRN-22-8 with the final ReLU removed: the same count, measured.
    snl_net = spec.with_relus([ReluLayer("final_act", "removed")])
    assert count(build_for_count(snl_net), spec.input_shape).relus == 1_359_872 == relus_snl(snl_net)


def test_resnet_snl_convention_is_without_stem(resnet18_cifar_spec):
    assert snl_omitted(resnet18_cifar_spec) == "act1" and relus_snl(resnet18_cifar_spec) == 491_520


def test_wrn22_8_params_match_the_paper():
    # Zagoruyko & Komodakis report 17.2M params for WRN-22-8 and 36.5M for WRN-28-10 on CIFAR-10.
    with torch.device("meta"):
        assert round(sum(p.numel() for p in build(wrn_spec(22, 8)).parameters()) / 1e6, 1) == 17.2
        assert round(sum(p.numel() for p in build(wrn_spec(28, 10)).parameters()) / 1e6, 1) == 36.5


def tiny_wrn(**changes) -> ArchSpec:
    """WRN-10-1 at 16x16: one block per stage, widths 16/32/64 (an any-stage spec can also differ)."""
    return wrn_spec(10, 1, input_size=16).replace(**changes)


def test_preact_specs_take_any_number_of_stages():
    two = tiny_wrn(stages=(Stage(8, 1), Stage(16, 2)), stem=Stem(width=4))
    five = tiny_wrn(stages=tuple(Stage(4, 1) for _ in range(5)), input_size=32)
    for spec in (two, five):
        assert ArchSpec.from_json(spec.to_json()) == spec
        out = build(spec)(torch.randn(2, 3, spec.input_size, spec.input_size))
        assert out.shape == (2, 10)
        assert count(build_for_count(spec), spec.input_shape).relus == total_relus(spec)
    # two stages: act1 4*256 + act2 8*256; stage 2 block 0: 8*256 + 16*64, block 1: 2*16*64; final 16*64
    assert total_relus(two) == 4 * 256 + 8 * 256 + 8 * 256 + 16 * 64 + 2 * 16 * 64 + 16 * 64
    assert two.relu_names() == ["layer1.0.act1", "layer1.0.act2", "layer2.0.act1", "layer2.0.act2",
                                "layer2.1.act1", "layer2.1.act2", "final_act"]


@pytest.mark.parametrize("mutate, field, message", [
    (lambda d: d.update(block="basic"), "spec.stages", "block 'basic' needs exactly 4 stages"),
    (lambda d: d.update(stages=[]), "spec.stages", "at least one stage"),
    (lambda d: d.update(relus=[{"name": "act1", "state": "removed"}]), "spec.relus[0].name", "final_act"),
    (lambda d: d.update(input_size=2), "spec.input_size", "total stride 4"),
])
def test_preact_validation_names_the_field(mutate, field, message):
    data = tiny_wrn().to_dict()
    mutate(data)
    with pytest.raises(SpecError, match=message) as err:
        ArchSpec.from_dict(data)
    assert err.value.field == field


def test_wrn_depth_rule():
    with pytest.raises(ReshapeError, match="6n \\+ 4"):
        wrn_spec(20, 8)


def test_relu_states_apply_to_wrn_like_resnets():
    # WRN-10-1 at 16: layer2.0.act2 is 32 x 8 x 8 = 2,048; keep 100 of them, remove final_act (64 x 4 x 4).
    spec = tiny_wrn().with_relus([ReluLayer("layer2.0.act2", "masked", kept=100, granularity="neuron"),
                                  ReluLayer("final_act", "removed")])
    model = build(spec)
    assert isinstance(model.layer2[0].act2, MaskedReLU) and isinstance(model.final_act, torch.nn.Identity)
    assert relu_sizes(spec)["layer2.0.act2"] == 2_048 and relu_sizes(spec)["final_act"] == 1_024
    assert count(model, spec.input_shape).relus == total_relus(tiny_wrn()) - 2_048 + 100 - 1_024 == total_relus(spec)
    model(torch.randn(2, 3, 16, 16)).sum().backward()


def test_timm_names_and_api():
    model = timm.create_model("wrn16_8", num_classes=7)
    assert model.get_classifier().out_features == 7 and model.num_features == 512
    # timm's layout: the stem conv (16 wide, stride 1), then the three stages (16k, 32k, 64k)
    assert [f["num_chs"] for f in model.feature_info] == [16, 128, 256, 512]
    assert [f["reduction"] for f in model.feature_info] == [1, 1, 2, 4]
    # timm's feature wrapper (what features_only builds) reads the stage outputs by feature_info
    from timm.models import FeatureListNet

    features = FeatureListNet(build(tiny_wrn()), out_indices=(1, 2, 3))(torch.randn(1, 3, 16, 16))
    assert [tuple(f.shape[1:]) for f in features] == [(16, 16, 16), (32, 8, 8), (64, 4, 4)]
    stages = timm.create_model("wrn16_8", features_only=True)(torch.zeros(1, 3, 32, 32))
    assert [tuple(f.shape[1:]) for f in stages] == [(16, 32, 32), (128, 32, 32), (256, 16, 16), (512, 8, 8)]


def test_count_cli_shows_both_conventions():
    res = CliRunner().invoke(cli, ["count", "wrn22_8", "--dataset", "cifar100", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["relus"] == 1_392_640 and data["relus_snl"] == 1_359_872 and data["snl_omits"] == "final_act"
    text = CliRunner().invoke(cli, ["count", "wrn22_8", "--dataset", "cifar100"]).output
    assert "1,392,640" in text and "SNL's convention: 1,359,872 ReLUs" in " ".join(text.split())


# -- methods on a tiny WRN: accepted, or refused with the rule that does not apply -------------
DATA = "fashion-mnist-mini"
SETTING = Setting(DATA, limit=256, epochs=2, batch_size=64, progress=False)
RANKING = (1, 3, 2)  # a ranking of the WRN's three stages (the tables rank a ResNet's four)


@pytest.fixture(scope="module")
def wrn_teacher(tmp_path_factory):
    """WRN-10-1 narrowed to width 4 (stem 4; stages 4/8/16 of one block) on 1x28x28: 14,112 ReLUs."""
    spec = narrow(apply_preset(wrn_spec(10, 1), dataset_preset(DATA)), 4)
    out = tmp_path_factory.mktemp("wrn") / "teacher"
    fit(out, spec, setting_config(SETTING, 1, 0.1), setting_splits(SETTING), progress=False)
    return load_trained(out)


def test_tiny_wrn_teacher_count(wrn_teacher):
    # 28 -> 14 -> 7: layer1.0 act1 4*784 + act2 4*784; layer2.0 act1 4*784 + act2 8*196;
    # layer3.0 act1 8*196 + act2 16*49; final_act 16*49
    assert total_relus(wrn_teacher.spec) == 3 * 4 * 784 + 2 * 8 * 196 + 2 * 16 * 49 == 14_112


@pytest.mark.parametrize("name, params, exact", [
    ("snl", {"lam": 1e-3}, False),  # binarized to at most the budget
    ("senet", {"ranking": RANKING}, True),  # neuron masks water-filled to exactly the budget
    ("deepreduce", {"ranking": RANKING}, False),  # a width-scaled network within the budget
    ("shallow_senet", {"senet": SENetParams(at_weight=100.0, ranking=RANKING)}, True),
])
def test_methods_accept_a_wrn(wrn_teacher, tmp_path, name, params, exact):
    method = get_method(name)
    result = method.fit(wrn_teacher, 3_000, tmp_path / name, SETTING, method.params(**params))
    spec, model = load_run(result.run)
    assert spec.block == "preact" and result.relus == count(model, spec.input_shape).relus <= 3_000
    assert (result.relus == 3_000) or not exact
    if name == "senet":  # the final ReLU is planned under "head", with the other stages
        assert set(result.built["per_stage"]) == {"layer1", "layer2", "layer3", "head"}
    if name == "deepreduce":  # thinning rungs are skipped: a pre-activation block has no post-add ReLU
        assert result.built["edits"]["thin"] is False


@pytest.mark.parametrize("name, params, message", [
    ("senet", {}, "default criticality ranking \\[4, 1, 2, 3\\] ranks the 4 stages of a ResNet; this network has 3"),
    ("deepreduce", {}, "must list each of the stages 1..3 once"),
    ("hybrenet", {}, "DeepReShape synthesis does not apply to 'wrn10_1_w4'.*4-stage timm ResNets"),
    ("hybrenet_senet", {}, "DeepReShape synthesis does not apply"),
    ("shallow", {}, "cannot merge pre-activation \\(WRN\\) blocks"),
])
def test_methods_refuse_a_wrn_naming_the_rule(wrn_teacher, tmp_path, name, params, message):
    method = get_method(name)
    with pytest.raises(ReshapeError, match=message):
        method.fit(wrn_teacher, 3_000, tmp_path / name, SETTING, method.params(**params))


def test_deepreduce_operators_on_a_wrn():
    spec = tiny_wrn()
    # culling the last stage takes the final ReLU with it (it acts on that stage's output)
    assert stage_relus(deepreduce.cull(spec, [3])) == {**stage_relus(spec), "layer3": 0, "head": 0}
    with pytest.raises(ReshapeError, match="no post-add ReLU|has none"):
        deepreduce.thin(spec)


def test_feeding_convs_of_a_preact_spec():
    feeding = tiny_wrn().feeding_convs()
    assert feeding["layer1.0.act1"] == "conv1" and feeding["layer2.0.act1"] == "layer1.0.conv2"
    assert feeding["layer2.0.act2"] == "layer2.0.conv1" and feeding["final_act"] == "layer3.0.conv2"
