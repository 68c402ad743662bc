"""SENet's and SNL's pieces on a tiny model: plan, mask locations, attention transfer, lambda
schedule, binarization. The registered methods end to end: tests/test_methods_budget.py."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from reshape.budget.masks import sites
from reshape.accounting import count
from reshape.errors import ReshapeError
from reshape.layers import SoftMaskReLU
from reshape.methods import senet, snl
from reshape.models import build
from reshape.runs import load_run
from reshape.train import EpochEnd, TrainConfig, run_epochs

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
    run_epochs(build(spec), spec, CFG, data, None, out, progress=False)
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


def test_mask_locator_moves_once_inside_the_last_epoch_when_asked(teacher):
    """Ours: a one-epoch location stage still places its masks, after ``move_at`` steps, from
    those steps' differences; the rest of the epoch trains under them, and nothing moves after."""
    spec, t = load_run(teacher)
    student = build(senet.plan(spec, t, 500, allocation="uniform").spec)
    locator = senet.MaskLocator(t, epochs=1, move_at=2)
    locator.attach(student)
    before = {n: layer.mask.clone() for n, layer in locator.layers.items()}
    kept = {n: layer.kept for n, layer in locator.layers.items()}
    step = lambda i: type("S", (), {"logits": torch.zeros(1), "epoch": 1, "index": i})()  # noqa: E731
    for i in range(2):
        x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(i))
        student(x), t(x)
        locator(step(i))
    moved = {n: layer.mask.clone() for n, layer in locator.layers.items()}
    assert any(not torch.equal(moved[n], before[n]) for n in moved) and not locator.diff
    assert {n: layer.kept for n, layer in locator.layers.items()} == kept  # same counts, other places
    x = torch.randn(4, 1, 16, 16)
    student(x), t(x)
    locator(step(2))  # after the move: nothing accumulates, nothing moves
    end = EpochEnd(1, student, t, None, {})
    locator.end_epoch(end)
    assert end.metrics["mask_moves"] > 0 and not locator.diff
    assert all(torch.equal(layer.mask, moved[n]) for n, layer in locator.layers.items())
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
    sched.end_epoch(end)  # 10 ReLUs, first check: remembered, no growth (warm-up)
    assert sched.lam == 1.0 and not end.stop
    assert sched(None).item() == pytest.approx(1.0 * 10)  # lambda * L1 of the gates
    sched.end_epoch(EpochEnd(2, None, None, None, {}))  # stalled after warm-up: lambda grows
    assert sched.lam == 2.0
    with torch.no_grad():
        layer.alpha[:7] = 0.0
    end = EpochEnd(3, None, None, None, {})
    sched.end_epoch(end)
    assert end.stop and end.metrics["relus"] == 3 and sched.reached and sched.reached_relus == 3
    assert layer.fixed.tolist() == [0.0] * 7 + [1.0] * 3  # the gates are frozen at their binary mask
    assert sched(None).item() == 0.0  # no penalty on fixed gates


def test_snl_schedule_checks_every_step_and_keeps_lambda_on_the_path_to_the_budget():
    """Per-step checks: lambda grows while the count is above the log-linear path to the budget,
    even when each check is a new minimum (the published rule alone would not grow it)."""
    layer = SoftMaskReLU((100,))
    sched = snl.LambdaSchedule({"a": layer}, {"a": 1}, budget=10, lam=1.0, growth=2.0, warmup=1,
                               check_every=1, deadline=5, total=100, best=100)
    counts = []
    for step in range(6):
        with torch.no_grad():
            layer.alpha[: 2 * step] = 0.0  # falls by 2 a step: a new minimum every time, far behind the path
        sched(None)
        counts.append(sched.lam)
    # checks from step 1 on; the first (warm-up) never grows; the path starts at step 1 (warm-up end)
    assert counts == [1.0, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert sched.path() == pytest.approx(10.0)  # at the deadline the path is at the budget
    state = sched.state_dict()
    again = snl.LambdaSchedule({"a": SoftMaskReLU((100,))}, {"a": 1}, budget=10)
    again.load_state_dict(state)
    assert (again.lam, again.steps, again.checks, again.best) == (sched.lam, sched.steps, sched.checks, sched.best)


def test_snl_reaching_the_budget_fixes_the_largest_gates_up_to_it_and_survives_resume():
    """Within budget at a check: the mask keeps the gates above the threshold, then fills up to
    the budget with the largest of those that just crossed it; a resumed schedule re-fixes it."""
    layer = SoftMaskReLU((6,))
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([1.3, 0.5, 0.008, 0.004, 0.0, 0.009]))
    sched = snl.LambdaSchedule({"a": layer}, {"a": 1}, budget=4, check_every=1)
    sched.steps = 7
    sched.check()
    assert sched.reached_at == 7 and sched.reached_relus == 2
    assert layer.fixed.tolist() == [1, 1, 1, 0, 0, 1] and layer.kept == 4
    fresh = SoftMaskReLU((6,))
    resumed = snl.LambdaSchedule({"a": fresh}, {"a": 1}, budget=4, check_every=1)
    resumed.load_state_dict(sched.state_dict())
    assert resumed.reached and torch.equal(fresh.fixed, layer.fixed)


def test_soft_mask_gates_have_no_upper_bound_stay_at_or_above_zero_and_freeze_when_fixed():
    layer = SoftMaskReLU((4,)).train()
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([1.3, -0.2, 0.5, 1.0]))
    x = torch.randn(2, 4)
    layer(x).sum().backward()
    assert layer.alpha.detach().tolist() == pytest.approx([1.3, 0.0, 0.5, 1.0])  # as SNL: no clamp at 1
    assert layer.alpha.grad.abs().sum() > 0
    layer.fix()
    layer.alpha.grad = None
    y = layer(x)
    m = torch.tensor([1.0, 0.0, 1.0, 1.0])
    assert torch.equal(y, m * torch.relu(x) + (1 - m) * x) and layer.kept == 3
    y.sum().backward()
    assert torch.count_nonzero(layer.alpha.grad) == 0  # in the graph (for DDP), but frozen


def test_snl_mask_phase_recipe_is_constant_adam_with_gates_in_their_own_group(teacher):
    """Published: Adam at 1e-3, constant, no weight decay; the gates here at their own lr."""
    from reshape.train import make_optimizer, make_scheduler

    spec, t = load_run(teacher)
    soft, layers = snl.soften(t, sites(spec, t), "neuron")
    cfg = snl.mask_config(TrainConfig(epochs=3, lr=0.1, schedule="cosine", warmup_epochs=1), 1e-3, 0.1)
    assert (cfg.optimizer, cfg.schedule, cfg.weight_decay, cfg.warmup_epochs) == ("adamw", "constant", 0.0, 0)
    optimizer = make_optimizer(soft, cfg)
    gates = {id(layer.alpha) for layer in layers.values()}
    by_lr = {}
    for group in optimizer.param_groups:
        assert group["weight_decay"] == 0.0
        for param in group["params"]:
            by_lr.setdefault(group["lr"], set()).add(id(param))
    assert by_lr == {0.1: gates, 1e-3: {id(q) for q in soft.parameters()} - gates}
    scheduler = make_scheduler(optimizer, cfg, 4)
    before = [g["lr"] for g in optimizer.param_groups]
    for _ in range(11):  # 3 epochs of 4 steps: no warm-up, no decay
        optimizer.step()
        scheduler.step()
        assert [g["lr"] for g in optimizer.param_groups] == before


def test_snl_binarize_never_breaks_ties_by_layer_order(teacher):
    """Gates that tie (all still at 1.0) must not fill the budget stem first."""
    spec, t = load_run(teacher)
    layer_sites = sites(spec, t)
    _, layers = snl.soften(t, layer_sites, "neuron")
    budget = layer_sites[0].size // 2  # the first layer alone could hold it twice over
    _, masks = snl.binarize(spec, layer_sites, layers, budget, "neuron", seed=0)
    kept = {name: int(m.sum()) for name, m in masks.items()}
    assert sum(kept.values()) == budget
    share = budget / sum(s.size for s in layer_sites)
    first = layer_sites[0]
    assert kept[first.name] < 2 * share * first.size  # about its share, not all of the budget
    assert sum(1 for n in kept.values() if n) > len(layer_sites) // 2


def test_snl_tie_order_is_seeded_reproducible_and_ranked_by_raw_gate_first(teacher):
    spec, t = load_run(teacher)
    layer_sites = sites(spec, t)
    _, layers = snl.soften(t, layer_sites, "neuron")
    last = list(layers.values())[-1]
    with torch.no_grad():
        last.alpha[0, 0, 0] = 1.5  # pushed above 1 by the task: ranks first, whatever the seed
    picks = {}
    for seed in (0, 0, 1):
        _, masks = snl.binarize(spec, layer_sites, layers, 100, "neuron", seed=seed)
        assert masks[list(layers)[-1]][0, 0, 0] == 1
        picks.setdefault(seed, []).append(torch.cat([m.flatten() for m in masks.values()]))
    assert torch.equal(picks[0][0], picks[0][1])  # the same seed, the same kept positions
    assert not torch.equal(picks[0][0], picks[1][0])  # another seed, another order among the ties


@pytest.mark.parametrize("change", [{"ce_weight": -0.1}, {"kd_weight": 1.5}, {"ranking": (1, 2, 2, 4)},
                                    {"estimator": "magic"}])
def test_senet_params_refuse_bad_loss_weights_rankings_and_estimators(change):
    with pytest.raises(ReshapeError, match="ce_weight|kd_weight|each stage|estimator"):
        senet.SENetParams(**change)
