from __future__ import annotations

import pytest
import torch
from torch import nn

from reshape.budget.masks import Site, copy_weights, masked_spec, sites, topk_mask
from reshape.budget.sensitivity import criticality, feeding_conv, linearize, pruning, stage_weights
from reshape.errors import ReshapeError
from reshape.accounting import count
from reshape.models import build


def test_topk_mask_exact_k_and_ties_by_index():
    scores = torch.tensor([[3.0, 1.0, 3.0], [0.5, 3.0, 2.0]])
    m = topk_mask(scores, 3)
    assert m.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    m = topk_mask(scores, 4)
    assert m.sum() == 4 and m[1, 2] == 1
    assert topk_mask(scores, 0).sum() == 0
    with pytest.raises(ValueError):
        topk_mask(scores, 7)


def test_sites_and_masked_spec_counts(tiny_spec):
    model = build(tiny_spec)
    ss = sites(tiny_spec, model)
    assert [s.name for s in ss] == tiny_spec.relu_names()
    assert ss[0] == Site("act1", (4, 16, 16)) and ss[0].unit("channel") == 256
    counts = {s.name: s.size for s in ss}
    counts["act1"] = 0
    counts["layer2.0.act1"] = 100
    spec = masked_spec(tiny_spec, ss, counts, "neuron")
    assert [(l.name, l.state) for l in spec.relus] == [("act1", "removed"), ("layer2.0.act1", "masked")]
    student = build(spec)
    copy_weights(student, model)
    assert torch.equal(student.layer4[0].conv2.weight, model.layer4[0].conv2.weight)
    assert count(student, (1, 16, 16)).relus == 4_480 - 1_024 - 512 + 100


def test_feeding_conv_names():
    assert feeding_conv("act1") == "conv1"
    assert feeding_conv("layer3.1.act2") == "layer3.1.conv2"


def test_pruning_sensitivity_runs_inverse_to_kept_density():
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(1, 1, 1, bias=False))
    model.add_module("conv2", nn.Conv2d(1, 4, 1, bias=False))
    with torch.no_grad():
        model.conv1.weight.fill_(10.0)  # survives pruning: density 1
        model.conv2.weight.copy_(torch.tensor([10.0, 1.0, 1.0, 1.0]).view(4, 1, 1, 1))  # density 1/4
    s = pruning(model, [Site("act1", (1, 1, 1)), Site("act2", (4, 1, 1))], density=0.4)
    assert s == {"act1": pytest.approx(1.0), "act2": pytest.approx(4.0)}


def test_linearize_sensitivity_is_zero_for_a_dead_layer(tiny_spec):
    torch.manual_seed(0)
    model = build(tiny_spec).eval()
    with torch.no_grad():
        for m in model.modules():  # undo timm's zero-init of the last BN in each block
            if isinstance(m, nn.BatchNorm2d):
                m.weight.normal_()
        # make layer4's inner ReLU see only positive inputs: identity is exact
        model.layer4[0].bn1.bias.fill_(100.0)
    batches = [torch.randn(4, 1, 16, 16)]
    ss = sites(tiny_spec, model)
    s = linearize(model, ss, batches=batches)
    assert s["layer4.0.act1"] == pytest.approx(0.0, abs=1e-6)
    assert s["act1"] > 0
    assert isinstance(model.act1, nn.ReLU)  # the model is restored


def test_criticality_weights_pruning_sensitivity_by_stage_rank(tiny_spec):
    """Stage at position r of n in the least-to-most ranking gets r / n; the stem goes with stage 1."""
    model = build(tiny_spec)
    ss = sites(tiny_spec, model)
    base = pruning(model, ss, density=0.1)
    weighted = criticality(model, ss, ranking=(4, 1, 2, 3), density=0.1)
    factor = {"act1": 0.5, "layer1": 0.5, "layer2": 0.75, "layer3": 1.0, "layer4": 0.25}
    for name, value in weighted.items():
        assert value == pytest.approx(base[name] * factor[name.split(".")[0]])
    assert stage_weights([1, 4, 2, 3]) == {1: 0.25, 4: 0.5, 2: 0.75, 3: 1.0}
    with pytest.raises(ReshapeError, match="each stage 1..n once"):
        criticality(model, ss, ranking=(1, 2, 2, 3))
    with pytest.raises(ReshapeError, match="has no stage 4"):
        criticality(model, ss, ranking=(1, 2, 3))
