"""timm-native spec-built models: default cfgs, standard kwargs, presets never ignored, spec_of.

Issue 14: the registry passed on only num_classes/in_chans/input_size, had no pretrained_cfg
(timm's data config said 224 px ImageNet for a 32 px CIFAR net), ignored a CIFAR preset on
timm models the spec cannot express, and ``model.reshape_spec`` went stale after SNL's mask
swap and graph rewrites.
"""
from __future__ import annotations

import pytest
import timm
import torch
from click.testing import CliRunner
from timm.data import resolve_data_config
from torch import nn

import reshape.models  # noqa: F401  (registers the spec-built families in timm)
from reshape import tables
from reshape.cli import cli
from reshape.errors import ReshapeError
from reshape.graph import linearize, trace
from reshape.layers import SoftMaskReLU
from reshape.models import PresetError, build, resolve, spec_of
from reshape.spec import ReluLayer


def _norm(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    preset = tables.dataset_preset(dataset)
    return tuple(preset["mean"]), tuple(preset["std"])


# -- dataset presets are applied or refused, never ignored ------------------------------------
@pytest.mark.parametrize("name", ["seresnet18", "resnet50d", "mobilenetv2_100"])
def test_cifar_preset_on_a_timm_model_the_spec_cannot_express_is_refused(name):
    res = CliRunner().invoke(cli, ["count", name, "--dataset", "cifar100"])
    # Before: exit 0, counted with the ImageNet stem (seresnet18: 49,152 stem ReLUs at 32x32).
    assert res.exit_code == 2, res.output
    assert "CIFAR stem" in res.output and name in res.output and "Traceback" not in res.output
    assert "--input-size 32 instead of --dataset" in res.output  # the library's parameters, as options
    with pytest.raises(PresetError, match="input_size 32 instead of dataset"):
        resolve(name, "cifar100", weights=False)


def test_training_a_timm_model_the_spec_cannot_express_says_so_not_input_size():
    from reshape.models import spec_for

    with pytest.raises(ReshapeError, match="not a ResNet-family model this tool can build") as info:
        spec_for("seresnet18", "cifar100")  # reshape train has no --input-size to suggest
    assert not isinstance(info.value, PresetError)


def test_imagenet_preset_applies_to_any_timm_model():
    resolved = resolve("seresnet18", "imagenet", weights=False)  # timm's own convention: nothing to refuse
    assert resolved.input_shape == (3, 224, 224) and resolved.model.num_classes == 1000


# -- pretrained cfgs: timm's data config is the dataset's ---------------------------------------
def test_cifar_hybrenet_data_config_is_cifar_not_imagenet():
    with torch.device("meta"):
        model = timm.create_model("hybrenet_5x5x3x_m16")
    cfg = resolve_data_config({}, model=model)
    mean, std = _norm("cifar10")  # the family's default geometry: 10 classes, 3x32x32
    assert cfg["input_size"] == (3, 32, 32) and cfg["mean"] == mean and cfg["std"] == std
    assert cfg["crop_pct"] == 1.0 and model.pretrained_cfg["num_classes"] == 10 == model.num_classes


def test_tags_and_class_counts_pick_the_dataset_cfg():
    with torch.device("meta"):
        tagged = timm.create_model("hybrenet_5x5x3x_m16.cifar100")
        by_classes = timm.create_model("resnet18_cifar", num_classes=100)
        tiny = timm.create_model("resnet18_cifar.tinyimagenet")
    for model in (tagged, by_classes):
        cfg = resolve_data_config({}, model=model)
        assert (cfg["mean"], cfg["std"]) == _norm("cifar100") and model.num_classes == 100
    assert resolve_data_config({}, model=tiny)["input_size"] == (3, 64, 64) and tiny.num_classes == 200
    assert spec_of(tiny).input_size == 64
    assert "hybrenet_5x5x3x_m16.cifar100" in timm.list_models("hybrenet_5x5x3x_m16*", include_tags=True)


def test_build_of_a_spec_gets_the_matching_preset_cfg(tiny_spec, resnet18_cifar_spec):
    model = build(resnet18_cifar_spec)  # 100 classes at 3x32x32: CIFAR-100's geometry
    assert model.pretrained_cfg["mean"] == _norm("cifar100")[0]
    # 3 classes at 1x16x16 matches no preset: the spec's geometry, timm's default normalisation
    cfg = resolve_data_config({}, model=build(tiny_spec))
    assert cfg["input_size"] == (1, 16, 16) and build(tiny_spec).pretrained_cfg["num_classes"] == 3


# -- standard kwargs pass through; unknown ones raise ---------------------------------------------
def test_features_only_gives_every_stage_of_a_cifar_hybrenet():
    model = timm.create_model("hybrenet_5x5x3x_m16", features_only=True)
    feats = model(torch.randn(2, 3, 32, 32))
    # HRN-5x5x3x-m16: widths [16, 5*16, 5*5*16, 5*5*3*16] = [16, 80, 400, 1200]; CIFAR stem keeps
    # 32x32 (3x3 stride 1, no max-pool), stage 1 stride 1, stages 2-4 halve: 32, 16, 8, 4.
    assert [tuple(f.shape[1:]) for f in feats] == [
        (16, 32, 32), (16, 32, 32), (80, 16, 16), (400, 8, 8), (1200, 4, 4)]
    assert model.feature_info.reduction() == [1, 1, 2, 4, 8]
    picked = timm.create_model("hybrenet_5x5x3x_m16", features_only=True, out_indices=(2, 4))
    assert [tuple(f.shape[1:]) for f in picked(torch.randn(1, 3, 32, 32))] == [(80, 16, 16), (1200, 4, 4)]


def test_drop_rates_and_global_pool_pass_through():
    model = timm.create_model("hybrenet_5x5x3x_m16", drop_rate=0.5, drop_path_rate=0.1, global_pool="max")
    assert model.drop_rate == 0.5 and model.global_pool.pool_type == "max"
    # timm's linear stochastic-depth ramp over the 8 blocks: the last block drops 0.1 * 7/7
    assert model.layer4[1].drop_path.drop_prob == pytest.approx(0.1)
    assert model.layer1[0].drop_path is None or isinstance(model.layer1[0].drop_path, nn.Identity)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_unknown_kwargs_raise():
    with pytest.raises(ReshapeError, match="unknown argument 'widht'.*drop_path_rate"):
        timm.create_model("hybrenet_5x5x3x_m16", widht=3)
    with pytest.raises(ReshapeError, match="unknown argument 'input_size'"):
        timm.create_model("reshape_spec", spec=_spec_dict(), input_size=64)


def _spec_dict() -> dict:
    from reshape.models import spec_from_timm

    return spec_from_timm("resnet18_cifar").to_dict()


# -- spec_of reads the spec from the modules: never stale -----------------------------------------
def test_spec_of_round_trips_relu_states(tiny_spec):
    spec = tiny_spec.with_relus([
        ReluLayer("layer1.0.act1", "removed"),
        ReluLayer("layer2.0.act2", "masked", kept=10, granularity="neuron"),
        ReluLayer("layer3.0.act1", "masked", kept=2 * 16, granularity="channel"),
    ])
    assert spec_of(build(spec)) == spec.replace(name="")


def test_spec_of_follows_snl_mask_swap(tiny_spec):
    model = build(tiny_spec)
    soft = SoftMaskReLU((8, 8, 8), "neuron")  # layer2.0.act2: 8 channels at 8x8 (stage 2 halves 16)
    with torch.no_grad():
        soft.alpha[:, :2] = 0  # gates below the threshold: 8 channels * 2 rows * 8 = 128 positions gone
    model.set_submodule("layer2.0.act2", soft)
    model.set_submodule("layer1.0.act1", nn.Identity())
    spec = spec_of(model)
    assert spec.relu_state("layer2.0.act2") == ReluLayer("layer2.0.act2", "masked", 512 - 128, "neuron")
    assert spec.relu_state("layer1.0.act1").state == "removed"
    from reshape.accounting import count

    assert count(model, spec.input_shape).relus == count(build(spec), spec.input_shape).relus


def test_spec_of_refuses_graph_rewrites_and_foreign_models(tiny_spec):
    mg = linearize(trace(build(tiny_spec), tiny_spec.input_shape), ["layer1.0"])
    with pytest.raises(ReshapeError, match="graph passes"):
        spec_of(mg.to_module())
    with torch.device("meta"):
        with pytest.raises(ReshapeError, match="squeeze-excitation"):
            spec_of(timm.create_model("seresnet18"))
        with pytest.raises(ReshapeError, match="deep stem"):
            spec_of(timm.create_model("resnet50d"))
