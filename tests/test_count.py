"""Accounting pinned to numbers derived by hand (methods.md section 0, anchors)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reshape.accounting import count, count_spec
from reshape.models import build, resolve
from reshape.spec import ReluLayer


def test_resnet18_cifar_reference_counts(resnet18_cifar_spec):
    c = count(build(resnet18_cifar_spec), (3, 32, 32))
    assert c.relus == 557_056
    assert c.relus_without_stem == 491_520
    # stem 64*32*32; each stage 4 ReLU layers of C*H*W
    assert [(s.name, s.relus) for s in c.stages if s.relus] == [
        ("stem", 65_536), ("layer1", 262_144), ("layer2", 131_072),
        ("layer3", 65_536), ("layer4", 32_768)]
    # stem 3*64*9*32*32; layer1 4*64*64*9*32*32; layers 2-4 each 134,217,728
    # (one stride-2 conv, three full convs, one 1x1 projection); fc 512*100.
    assert c.macs == 1_769_472 + 150_994_944 + 3 * 134_217_728 + 51_200 == 555_468_800
    assert c.stage("layer2").macs == 18_874_368 + 3 * 37_748_736 + 2_097_152
    assert c.comparisons == 0
    assert c.nonlinear_depth == 17
    assert c.params == sum(p.numel() for p in build(resnet18_cifar_spec).parameters())


def test_resnet34_cifar_count():
    r = resolve("resnet34", "cifar100")
    assert count(r.model, r.input_shape).relus == 966_656


def test_timm_resnet50_imagenet_count():
    r = resolve("resnet50")
    c = count(r.model, r.input_shape)
    assert r.input_shape == (3, 224, 224)
    assert c.relus == 9_608_704
    assert c.stem_relus == 64 * 112 * 112
    assert c.comparisons == 64 * 56 * 56 * 8  # 3x3 max-pool: 8 comparisons per output
    assert c.nonlinear_depth == 1 + 1 + 16 * 3  # stem ReLU, max-pool, 16 bottlenecks


def test_dataset_preset_sets_cifar_stem_for_timm_resnet18():
    r = resolve("resnet18", "cifar10")
    assert r.spec.stem.kind == "cifar" and r.spec.num_classes == 10
    assert count(r.model, r.input_shape).relus == 557_056
    r = resolve("resnet18", "cifar10", input_size=64)
    assert count(r.model, r.input_shape).relus == 4 * 557_056


def test_removed_and_masked_layers(resnet18_cifar_spec):
    thinned = resnet18_cifar_spec.with_relus(
        [ReluLayer(f"layer{s}.{b}.act2", "removed") for s in range(1, 5) for b in range(2)])
    c = count(build(thinned), (3, 32, 32))
    assert c.relus == 65_536 + 491_520 // 2
    assert c.nonlinear_depth == 1 + 8  # the inner ReLUs are skipped by the shortcut only at act2
    masked = resnet18_cifar_spec.with_relus([
        ReluLayer("layer1.0.act1", "masked", kept=100, granularity="neuron"),
        ReluLayer("layer4.1.act2", "masked", kept=3 * 16, granularity="channel"),
    ])
    c = count(build(masked), (3, 32, 32))
    assert c.relus == 557_056 - 65_536 + 100 - 8_192 + 48
    assert c.nonlinear_depth == 17
    # without weights: the thinned spec on the meta device, the masked one where its masks hold values
    assert count_spec(thinned).relus == 65_536 + 491_520 // 2
    assert count_spec(masked) == c


def test_masked_layer_with_no_kept_relu_adds_no_depth(tiny_spec):
    names = [n for n in tiny_spec.relu_names() if n != "act1"]
    spec = tiny_spec.with_relus([ReluLayer(n, "masked", kept=0, granularity="neuron") for n in names])
    c = count(build(spec), (1, 16, 16))
    assert (c.relus, c.nonlinear_depth) == (4 * 16 * 16, 1)


def test_generic_module_reused_relu_and_functional_relu():
    import torchvision

    # torchvision's BasicBlock calls one ReLU module twice: each call is counted.
    c = count(torchvision.models.resnet18(weights=None), (3, 224, 224))
    assert c.relus == 64 * 112 * 112 + 4 * 64 * 56 * 56 + 4 * 128 * 28 * 28 + 4 * 256 * 14 * 14 + 4 * 512 * 7 * 7
    assert c.stem_relus == 64 * 112 * 112

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.relu(self.conv(x))
            return self.pool(y) + F.avg_pool2d(x.repeat(1, 2, 1, 1), 2)

    c = count(Functional(), (2, 8, 8))
    assert c.relus == 4 * 8 * 8
    assert c.comparisons == 4 * 4 * 4 * 3  # 2x2 pool: 3 comparisons per output
    assert c.macs == 2 * 4 * 9 * 8 * 8
    assert c.nonlinear_depth == 2


def test_count_leaves_the_model_untouched(tiny_spec):
    model = build(tiny_spec).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count(model, (1, 16, 16))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not p.is_meta for p in model.parameters())


def test_bad_input_shape_is_a_clear_error(tiny_spec):
    from reshape.errors import ReshapeError

    with pytest.raises(ReshapeError, match="input shape"):
        count(build(tiny_spec), (1, 0, 16))
    with pytest.raises(ReshapeError, match="cannot run on input shape"):
        count(build(tiny_spec), (3, 16, 16))  # wrong channel count
