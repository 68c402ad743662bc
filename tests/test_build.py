from __future__ import annotations

import pytest
import timm
import torch

import reshape.models  # noqa: F401  (registers the spec-built families in timm)
from reshape.accounting import count
from reshape.errors import ReshapeError, SpecError
from reshape.models import build, spec_from_timm
from reshape.spec import ArchSpec, ReluLayer, Stage, Stem, save_spec


def test_build_narrow_stem_rebuilds_layer1_at_stem_width():
    spec = ArchSpec(block="basic", stages=tuple(Stage(w, 2) for w in (16, 32, 64, 128)),
                    stem=Stem("cifar", 16, 1), num_classes=10, in_chans=1, input_size=28)
    model = build(spec)
    assert model.conv1.in_channels == 1 and model.conv1.out_channels == 16
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert model.layer1[0].conv1.in_channels == 16
    assert model.layer1[0].downsample is None  # stem width == stage-1 width: no projection
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert [f["num_chs"] for f in model.feature_info] == [16, 16, 32, 64, 128]
    assert [f["reduction"] for f in model.feature_info] == [1, 1, 2, 4, 8]


def test_build_bottleneck_imagenet_stem_matches_timm_resnet50_params():
    spec = spec_from_timm("resnet50")
    assert spec.block == "bottleneck" and spec.depths == (3, 4, 6, 3) and spec.widths == (64, 128, 256, 512)
    with torch.device("meta"):
        ours, theirs = build(spec), timm.create_model("resnet50")
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]


def test_spec_from_timm_rejects_non_plain_resnets():
    assert spec_from_timm("resnet50d") is None  # deep stem, avg-pool downsample
    assert spec_from_timm("seresnet18") is None  # squeeze-excitation
    assert spec_from_timm("resnet101").depths == (3, 4, 23, 3)


def test_timm_registry_knows_spec_families(tmp_path, tiny_spec):
    model = timm.create_model("resnet18_cifar", num_classes=100)
    assert count(model, (3, 32, 32)).relus == 557_056
    assert model.fc.out_features == 100
    path = tmp_path / "tiny.json"
    save_spec(tiny_spec, path)
    model = timm.create_model("reshape_spec", spec=str(path))
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 3)
    with pytest.raises(ReshapeError, match="no pretrained weights"):
        timm.create_model("resnet34_cifar", pretrained=True)


def test_relu_states_become_identity_and_masks(tiny_spec):
    spec = tiny_spec.with_relus([
        ReluLayer("layer1.0.act1", "removed"),
        ReluLayer("layer2.0.act2", "masked", kept=10, granularity="neuron"),
        ReluLayer("layer3.0.act1", "masked", kept=2 * 16, granularity="channel"),
    ])
    model = build(spec)
    assert isinstance(model.layer1[0].act1, torch.nn.Identity)
    assert model.layer2[0].act2.mask.shape == (8, 8, 8) and model.layer2[0].act2.kept == 10
    assert model.layer3[0].act1.mask.shape == (8,) and model.layer3[0].act1.kept == 2
    # the mask keeps ReLU behaviour exactly where it is 1
    layer = model.layer2[0].act2
    x = torch.randn(3, 8, 8, 8)
    y = layer(x)
    m = layer.mask.bool().expand_as(x)
    assert torch.equal(y[m], x.relu()[m]) and torch.equal(y[~m], x[~m])


def test_masked_counts_beyond_the_layer_are_rejected(tiny_spec):
    with pytest.raises(SpecError, match="exceeds the layer's 1024 ReLUs"):
        build(tiny_spec.with_relus([ReluLayer("act1", "masked", kept=2000, granularity="neuron")]))
    with pytest.raises(SpecError, match="not a multiple of 256"):
        build(tiny_spec.with_relus([ReluLayer("act1", "masked", kept=100, granularity="channel")]))


def test_masked_relu_backward_and_soft_mask_counts():
    from reshape.accounting import count
    from reshape.layers import MaskedReLU, SoftMaskReLU

    layer = MaskedReLU((2, 2, 2))
    layer.set_mask(torch.tensor([1.0, 0, 1, 0, 1, 0, 1, 0]).view(2, 2, 2))
    x = torch.tensor([-1.0, -1, 2, 2, -3, -3, 4, 4]).view(1, 2, 2, 2).requires_grad_()
    y = layer(x)
    m = layer.mask.unsqueeze(0)
    assert torch.equal(y, torch.relu(m * x) + (1 - m) * x)
    y.sum().backward()
    assert x.grad.flatten().tolist() == [0, 1, 1, 1, 0, 1, 1, 1]  # no gradient through clipped ReLUs

    nn_seq = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1), SoftMaskReLU((3,), "channel"))
    with torch.no_grad():
        nn_seq[1].alpha.copy_(torch.tensor([0.5, 0.005, 1.0]))  # 0.005 is below SNL's 1e-2
    c = count(nn_seq, (1, 4, 4))
    assert c.relus == 2 * 16 and c.nonlinear_depth == 1


def test_masked_relu_training_path_matches_the_formula_in_values_and_gradients():
    from reshape.layers import MaskedReLU

    torch.manual_seed(0)
    for granularity, shape in (("neuron", (3, 4, 4)), ("channel", (3,))):
        layer = MaskedReLU(shape, granularity)
        layer.set_mask((torch.rand(shape) > 0.5).float())
        m = layer.mask.unsqueeze(0) if granularity == "neuron" else layer.mask.view(1, -1, 1, 1)
        leaf = torch.randn(2, 3, 4, 4, requires_grad=True)
        y = layer(leaf * 1.0)  # a non-leaf input takes the in-place training path
        ref_leaf = leaf.detach().clone().requires_grad_()
        ref = torch.relu(m * ref_leaf) + (1 - m) * ref_leaf
        assert torch.equal(y, ref)
        g = torch.randn_like(y)
        y.backward(g)
        ref.backward(g)
        assert torch.equal(leaf.grad, ref_leaf.grad)
