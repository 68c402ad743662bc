"""HybReNet and shallow-block methods and their SENet/SNL pipelines, end to end at a tiny setting."""
from __future__ import annotations

import dataclasses

import pytest

from reshape.accounting import count
from reshape.errors import ReshapeError
from reshape.methods import Setting, get_method, setting_config, setting_splits
from reshape.models import spec_for
from reshape.analytic import stage_relus, total_relus
from reshape.deepreshape import smallest
from reshape.methods.hybrenet import base_spec
from reshape.runs import RunDir, load_run, load_trained
from reshape.train import fit

SETTING = Setting(data="fashion-mnist-mini", limit=256, epochs=2, batch_size=64, progress=False)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipelines") / "teacher"
    spec = spec_for("resnet18", "fashion-mnist-mini", 4)
    fit(out, spec, setting_config(SETTING, 1, 0.1), setting_splits(SETTING), progress=False)
    return out


def measured(result) -> int:
    spec, model = load_run(result.run)
    return count(model, spec.input_shape).relus


def relu_widths(spec) -> list[int]:
    """Stage widths where the stage keeps ReLUs, 0 where it is culled (its width is linear)."""
    counts = stage_relus(spec)
    return [s.width if counts[f"layer{i}"] else 0 for i, s in enumerate(spec.stages, start=1)]


@pytest.mark.parametrize("width", [8, 16])
def test_bases_grow_with_the_budget_of_a_narrow_teacher(width):
    # Regression (issue 13): against the full-width ResNet18 every budget of a width-8 teacher
    # was "relu-starved", and the 2x MAC cap with a minimum width of 4 gave one m = 4 base
    # (4/8/40/120) at every budget. Now the regime is read off the teacher's own ReLUs and
    # widths move on a unit of w/64 channels: five different bases, HRN-5x5x3x at 33% and 50%
    # (issue 22: the budgets of the fair preset, bases of 2x the budget as published).
    teacher = spec_for("resnet18", "fashion-mnist", width)
    p = get_method("hybrenet_senet").defaults
    bases = [base_spec(teacher, "fashion-mnist", int(f * total_relus(teacher)), p)
             for f in (0.05, 0.10, 0.25, 0.33, 0.50)]
    relus = [why.relus for _, why in bases]
    assert all(a < b for a, b in zip(relus, relus[1:])), relus
    for (spec, why), fraction in zip(bases, (0.05, 0.10, 0.25, 0.33, 0.50)):
        budget = int(fraction * total_relus(teacher))
        assert 0.98 * p.factor * budget <= why.relus <= p.factor * budget, spec.name
    widths = [relu_widths(spec) for spec, _ in bases]
    assert all(a <= b for w, v in zip(widths, widths[1:]) for a, b in zip(w, v)), widths
    regimes = [why.regime for _, why in bases]  # starved -> lean -> rich as the base grows
    order = ["relu-starved", "relu-lean", "relu-rich"]
    assert sorted(regimes, key=order.index) == regimes and regimes[0] == order[0] and regimes[-2:] == order[-1:] * 2
    assert {why.multipliers for _, why in bases} == {(2, 5, 3), (5, 5, 3)}


def test_a_base_below_the_family_minimum_is_the_smallest_network():
    teacher = spec_for("resnet18", "fashion-mnist", 4)
    p = get_method("hybrenet_senet").defaults
    floor = smallest(teacher, "fashion-mnist", p.ranking)  # HRN-2x5x3x-m0.75, stage 1 culled, thinned
    spec, why = base_spec(teacher, "fashion-mnist", 100, p)  # 2 x 100 is far below it
    assert spec.widths == floor.widths and why.relus == total_relus(floor) == 2_304


def test_params_from_strings_reach_optional_fields():
    # `--set hybrenet_senet.macs=5` (a `float | None` field) used to stay a string
    p = get_method("hybrenet_senet").params(macs="5", ranking="4,1,2,3")
    assert (p.macs, p.ranking) == (5.0, (4, 1, 2, 3))


def test_hybrenet_trains_the_network_synthesized_for_the_budget(teacher, tmp_path):
    method = get_method("hybrenet")
    result = method.fit(teacher, 13_568, tmp_path / "h", SETTING)  # 50% of the teacher's ReLUs
    assert result.family == "ours" and result.built["spec"].startswith("HRN-")
    assert result.relus == measured(result) == result.built["relus"] <= 13_568
    assert result.top1 is not None and RunDir(result.run).require_manifest().training["status"] == "done"


def test_budgets_that_synthesize_the_same_base_share_one_distilled_training(teacher, tmp_path):
    setting = dataclasses.replace(SETTING, shared=str(tmp_path / "shared"))
    method = get_method("hybrenet_senet")
    first = method.fit(teacher, 3_000, tmp_path / "b3k", setting)
    base = RunDir(first.built["base_run"])
    assert first.built["reduced"] and base.path.parent == tmp_path / "shared"
    assert base.method() == "hybrenet-base" and base.is_done()
    training = base.require_manifest().training
    # trained as the teacher was: its recipe and epochs on the same images, no KD (the teacher had none)
    assert training["params"]["teacher"] is None
    taught = RunDir(teacher).require_manifest().training["params"]
    assert training["params"]["train"] == taught["train"] and training["params"]["data"] == taught["data"]
    # the reduced network's training: the base's epoch, then SENet's two stages, on the same images
    assert [p["method"] for p in first.compute["phases"]] == ["hybrenet-base", "hybrenet_senet:locate",
                                                             "hybrenet_senet"]
    assert first.compute["image_passes"] == 3 * 256
    stamp = (base / "checkpoint.pt").stat().st_mtime_ns
    second = method.fit(teacher, 3_010, tmp_path / "b3010", setting)  # 2B rounds to the same base
    assert second.built["base"]["spec"] == first.built["base"]["spec"]
    assert second.built["base_run"] == first.built["base_run"]
    assert (base / "checkpoint.pt").stat().st_mtime_ns == stamp  # read back, not trained again
    for result, budget in ((first, 3_000), (second, 3_010)):
        assert result.relus == measured(result) <= budget and result.top1 is not None
    # SNL on the same base reuses it too: the base belongs to no one pipeline
    snl = get_method("hybrenet_snl")
    third = snl.fit(teacher, 3_000, tmp_path / "snl3k", setting)
    assert third.built["base_run"] == first.built["base_run"] and third.relus == measured(third) <= 3_000
    assert (base / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_a_base_within_the_budget_is_the_shared_base_fine_tuned(teacher, tmp_path):
    # a MAC cap of half the teacher's leaves only HRN-2x5x3x-m1.1875-cull1 (6,224 ReLUs) for 2 x 8,000
    method = get_method("hybrenet_senet")
    result = method.fit(teacher, 8_000, tmp_path / "b8k", SETTING, method.params(macs=0.5))
    assert not result.built["reduced"] and result.built["base"]["relus"] == 6_224 == result.relus == measured(result)
    base = load_trained(result.built["base_run"])
    assert base.path.parent == tmp_path / "b8k" and RunDir(base.path).method() == "hybrenet-base"
    assert RunDir(result.run).require_manifest().training["params"]["init"] == base.digest
    assert result.macs <= 0.5 * count(load_trained(teacher).model, (1, 28, 28)).macs


def test_the_mac_cap_can_leave_no_hybrenet(teacher, tmp_path):
    method = get_method("hybrenet_senet")
    with pytest.raises(ReshapeError, match="budget too small .* raise the budget"):
        method.fit(teacher, 8_000, tmp_path / "x", SETTING, method.params(macs=0.1))


@pytest.fixture(scope="module")
def compact(teacher):
    out = teacher.parent / "compact"
    return out, get_method("shallow").fit(teacher, 18_995, out, SETTING)


def test_shallow_compact_merges_the_chosen_blocks_within_the_budget(compact):
    out, result = compact
    built = result.built
    assert result.relus == measured(result) == built["after"]["relus"] <= 18_995
    assert built["after"]["macs"] == result.macs < built["before"]["macs"]
    assert built["after"]["nonlinear_depth"] == built["before"]["nonlinear_depth"] - len(built["blocks"])
    assert result.top1 == built["after"]["top1"] == RunDir(out).require_manifest().training["last"]["test_top1"]
    lin = RunDir(out / "linearized")
    assert lin.method() == "shallow:linearized" and lin.is_done()
    assert built["linearized"]["relus"] == result.relus  # merging removes no further ReLUs


def test_shallow_exact_keeps_the_linearized_function(teacher, compact, tmp_path):
    _, planned = compact
    result = get_method("shallow").fit(teacher, 18_995, tmp_path / "exact", SETTING,
                                       get_method("shallow").params(mode="exact"))
    built = result.built
    assert built["blocks"] == planned.built["blocks"]  # scoring does not depend on the mode
    assert all(m["max_rel_error"] < 1e-4 for m in built["merges"])
    assert result.top1 == built["linearized"]["top1"] and result.relus == measured(result) <= 18_995
    assert result.macs > built["before"]["macs"]  # exact K x K merges cost more MACs


def test_changing_the_mode_into_the_same_folder_is_refused(teacher, compact):
    out, _ = compact
    with pytest.raises(ReshapeError, match=r"params\.mode: \"compact\" -> \"exact\""):
        get_method("shallow").fit(teacher, 18_995, out, SETTING, get_method("shallow").params(mode="exact"))


def test_shallow_senet_linearizes_then_reaches_the_budget(teacher, tmp_path):
    result = get_method("shallow_senet").fit(teacher, 5_000, tmp_path / "s", SETTING)
    assert result.built["linearized_blocks"] and result.relus == measured(result) <= 5_000
    assert result.top1 is not None
