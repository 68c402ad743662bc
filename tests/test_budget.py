"""SENet's and SNL's pieces on a tiny model: plan, mask locations, attention transfer, lambda
schedule, binarization. The registered methods end to end: tests/test_methods_budget.py."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from reshape.budget.masks import sites
from reshape.count import count
from reshape.errors import ReshapeError
from reshape.layers import SoftMaskReLU
from reshape.methods import senet, snl
from reshape.models import build
from reshape.runs import load_run
from reshape.train import EpochEnd, TrainConfig, train

CFG = TrainConfig(epochs=1, batch_size=16, lr=0.05)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 1, 16, 16, generator=g)
    return TensorDataset(x, torch.randint(0, 3, (48,), generator=g))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, data):
    from reshape.spec import ArchSpec, Stage, Stem

    spec = ArchSpec(block="basic", stages=tuple(Stage(w, 1) for w in (4, 8, 8, 16)),
                    stem=Stem("cifar", 4, 1), num_classes=3, in_chans=1, input_size=16)
    out = tmp_path_factory.mktemp("teacher")
    train(build(spec), spec, CFG, data, None, out, progress=False)
    return out


def test_plan_counts_sum_to_budget_and_uniform_keeps_one_fraction(teacher):
    spec, model = load_run(teacher)
    p = senet.plan(spec, model, 1000, "pruning")
    assert p.total == 1000 and set(p.counts) == set(spec.relu_names())
    assert p.to_dict()["per_stage"] == p.per_stage() and sum(p.per_stage().values()) == 1000
    assert set(p.per_stage()) == {"stem", "layer1", "layer2", "layer3", "layer4"}
    u = senet.plan(spec, model, 4480 // 4, allocation="uniform")
    assert u.counts == {name: size // 4 for name, size in u.sizes.items()}
    c = senet.plan(spec, model, 1000, "pruning", granularity="channel")
    assert c.total <= 1000 and all(n % (c.sizes[k] // s.shape[0]) == 0
                                   for (k, n), s in zip(c.counts.items(), sites(spec, model)))
    with pytest.raises(ReshapeError, match="exceeds the teacher's 4,480"):
        senet.plan(spec, model, 5000, "pruning")


def test_criticality_plan_records_its_ranking_and_needs_one(teacher):
    spec, model = load_run(teacher)
    p = senet.plan(spec, model, 1000, ranking=(4, 1, 2, 3))
    assert (p.estimator, p.ranking) == ("criticality", (4, 1, 2, 3))
    assert senet.Plan.from_dict(p.to_dict()) == p
    with pytest.raises(ReshapeError, match="needs a stage ranking"):
        senet.plan(spec, model, 1000)
    assert senet.resolve_ranking("cifar100", spec) == (1, 4, 2, 3)
    with pytest.raises(ReshapeError, match="default criticality.*pruning"):
        senet.resolve_ranking("imagefolder", spec)


def test_mask_locator_moves_masks_to_largest_differences(teacher):
    spec, t = load_run(teacher)
    p = senet.plan(spec, t, 500, allocation="uniform")
    student = build(p.spec)
    locator = senet.MaskLocator(t, epochs=2)
    locator.attach(student)
    x = torch.randn(4, 1, 16, 16)
    student(x), t(x)
    locator(type("S", (), {"logits": torch.zeros(1), "epoch": 1})())
    expected = {n: (locator.teacher[n] - locator.student[n]).abs().sum(0) for n in locator.layers}
    end = EpochEnd(1, student, t, None, {})
    locator.end_epoch(end)
    for name, layer in locator.layers.items():
        assert layer.kept == p.counts[name]
        top = expected[name].flatten().topk(layer.kept).values.min()
        assert (expected[name][layer.mask.bool()] >= top).all()
    assert count(student, (1, 16, 16)).relus == 500
    locator.remove()


def test_mask_locator_leaves_the_masks_of_the_last_epoch_alone(teacher):
    spec, t = load_run(teacher)
    student = build(senet.plan(spec, t, 500, allocation="uniform").spec)
    locator = senet.MaskLocator(t, epochs=1)
    locator.attach(student)
    before = {n: layer.mask.clone() for n, layer in locator.layers.items()}
    x = torch.randn(4, 1, 16, 16)
    student(x), t(x)
    locator(type("S", (), {"logits": torch.zeros(1), "epoch": 1})())
    end = EpochEnd(1, student, t, None, {})
    locator.end_epoch(end)
    assert end.metrics["mask_moves"] == 0 and not locator.diff
    assert all(torch.equal(layer.mask, before[n]) for n, layer in locator.layers.items())
    locator.remove()


def test_attention_transfer_is_zero_for_identical_networks(teacher):
    spec, t = load_run(teacher)
    at = senet.AttentionTransfer(t, senet.stage_outputs(spec), 1000.0)
    at.attach(t)
    t(torch.randn(2, 1, 16, 16))
    assert at(None).item() == 0.0
    a = senet.AttentionTransfer.attention(torch.ones(1, 3, 2, 2))
    assert torch.allclose(a, torch.full((1, 4), 0.5))  # mean_c(1) = 1 at 4 positions, unit norm


def test_attention_transfer_sums_over_the_stage_outputs_only(teacher):
    """The released pairs: the outputs of layer1..layer4, not the stem, blocks or pooled features."""
    spec, t = load_run(teacher)
    stages = ["layer1", "layer2", "layer3", "layer4"]
    assert senet.stage_outputs(spec) == stages
    student = build(spec)
    at = senet.AttentionTransfer(t, stages, 2.0)
    at.attach(student)
    x = torch.randn(2, 1, 16, 16)
    student(x), t(x)
    a = senet.AttentionTransfer.attention
    want = 2.0 * sum((a(at.student[n]) - a(at.teacher[n])).pow(2).mean() for n in stages)
    assert at.student["layer4"].shape[1] == 16  # the stage's output, after its last block
    assert at(None).item() == pytest.approx(want.item()) and want.item() > 0
    at.remove()


def test_snl_schedule_grows_lambda_when_stalled_and_stops_at_budget():
    layer = SoftMaskReLU((10,))
    sched = snl.LambdaSchedule({"a": layer}, {"a": 1}, budget=4, lam=1.0, growth=2.0, warmup=1)
    end = EpochEnd(1, None, None, None, {})
    sched.end_epoch(end)  # 10 ReLUs, first epoch: remembered, no growth
    assert sched.lam == 1.0 and not getattr(end, "stop", False)
    sched.end_epoch(EpochEnd(2, None, None, None, {}))  # stalled after warm-up: lambda grows
    assert sched.lam == 2.0
    with torch.no_grad():
        layer.alpha[:7] = 0.0
    end = EpochEnd(3, None, None, None, {})
    sched.end_epoch(end)
    assert end.stop and end.metrics["relus"] == 3
    assert sched(None).item() == pytest.approx(2.0 * 3)  # lambda * sum of gates


def test_snl_binarize_cuts_to_budget_by_gate_value(teacher):
    spec, t = load_run(teacher)
    layer_sites = sites(spec, t)
    soft, layers = snl.soften(t, layer_sites, "neuron")
    with torch.no_grad():
        for i, layer in enumerate(layers.values()):
            layer.alpha.copy_(torch.rand(layer.alpha.shape, generator=torch.Generator().manual_seed(i)))
    final, masks = snl.binarize(spec, layer_sites, layers, 777, "neuron")
    assert sum(int(m.sum()) for m in masks.values()) == 777
    gates = torch.cat([l.alpha.flatten() for l in layers.values()])
    kept = torch.cat([masks[n].flatten() for n in layers]).bool()
    assert gates[kept].min() >= gates[~kept].max()
    assert count(build(final), (1, 16, 16)).relus == 777


def test_soft_mask_gates_stay_trainable_after_being_pushed_above_one():
    layer = SoftMaskReLU((4,)).train()
    with torch.no_grad():
        layer.alpha.fill_(1.3)  # an optimizer step overshot the upper bound
    x = torch.randn(2, 4)
    layer(x).sum().backward()
    assert float(layer.alpha.detach().max()) == 1.0  # projected back into [0, 1] ...
    assert layer.alpha.grad is not None and layer.alpha.grad.abs().sum() > 0  # ... where gradients flow


@pytest.mark.parametrize("change", [{"ce_weight": -0.1}, {"kd_weight": 1.5}, {"ranking": (1, 2, 2, 4)},
                                    {"estimator": "magic"}])
def test_senet_params_refuse_bad_loss_weights_rankings_and_estimators(change):
    with pytest.raises(ReshapeError, match="ce_weight|kd_weight|each stage|estimator"):
        senet.SENetParams(**change)
