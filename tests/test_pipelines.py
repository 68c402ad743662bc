"""HybReNet and shallow-block methods and their SENet/SNL pipelines, end to end at a tiny setting."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reshape.count import count
from reshape.errors import ReshapeError
from reshape.methods import Setting, get_method
from reshape.models import spec_for
from reshape.runs import RunDir, load_run
from reshape.train import fit

SETTING = Setting(data="fashion-mnist-mini", limit=256, epochs=2, teacher_epochs=1, batch_size=64, progress=False)
#: The width-4 teacher has 27,136 ReLUs and 1.8M MACs; the smallest HybReNet of the low-budget
#: family (HRN-2x5x3x, stage 1 culled, thinned, base width 4) has 10,896 ReLUs and 10.1M MACs,
#: so the 2x MAC cap of the defaults leaves nothing to synthesize: 6x admits exactly that one.
MACS = 6.0


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipelines") / "teacher"
    spec = spec_for("resnet18", "fashion-mnist-mini", 4)
    fit(out, spec, SETTING.config(SETTING.teacher_epochs, 0.1), SETTING.splits(), progress=False)
    return out


def measured(result) -> int:
    spec, model = load_run(result.run)
    return count(model, spec.input_shape).relus


def test_hybrenet_trains_the_network_synthesized_for_the_budget(teacher, tmp_path):
    method = get_method("hybrenet")
    result = method.fit(teacher, 13_568, tmp_path / "h", SETTING, method.params(macs=20.0))
    assert result.family == "ours" and result.built["spec"].startswith("HRN-")
    assert result.relus == measured(result) == result.built["relus"] <= 13_568
    assert result.top1 is not None and RunDir(result.run).require_manifest().training["status"] == "done"


def test_budgets_that_synthesize_the_same_base_share_one_training(teacher, tmp_path):
    setting = dataclasses.replace(SETTING, shared=str(tmp_path / "shared"))
    method = get_method("hybrenet_senet")
    p = method.params(macs=MACS)
    first = method.fit(teacher, 8_000, tmp_path / "b8k", setting, p)
    base = RunDir(first.built["base_run"])
    assert first.built["reduced"] and base.path.parent == tmp_path / "shared"
    assert base.method() == "hybrenet-base" and base.is_done()
    stamp = (base / "checkpoint.pt").stat().st_mtime_ns
    second = method.fit(teacher, 9_000, tmp_path / "b9k", setting, p)
    assert second.built["base_run"] == first.built["base_run"]
    assert (base / "checkpoint.pt").stat().st_mtime_ns == stamp  # read back, not trained again
    for result, budget in ((first, 8_000), (second, 9_000)):
        assert result.relus == measured(result) <= budget and result.top1 is not None
    # SNL on the same base reuses it too: the base belongs to no one pipeline
    snl = get_method("hybrenet_snl")
    third = snl.fit(teacher, 8_000, tmp_path / "snl8k", setting, snl.params(macs=MACS))
    assert third.built["base_run"] == first.built["base_run"] and third.relus == measured(third) <= 8_000
    assert (base / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_a_base_within_the_budget_is_trained_directly(teacher, tmp_path):
    method = get_method("hybrenet_senet")
    result = method.fit(teacher, 12_000, tmp_path / "b12k", SETTING, method.params(macs=MACS))
    assert not result.built["reduced"] and result.built["base"]["relus"] == 10_896
    assert result.relus == measured(result) == 10_896 and result.top1 is not None
    assert not any(p.name.startswith("hybrenet-base") for p in Path(result.run).iterdir())


def test_the_mac_cap_can_leave_no_hybrenet(teacher, tmp_path):
    with pytest.raises(ReshapeError, match="budget too small .* raise the budget"):
        get_method("hybrenet_senet").fit(teacher, 8_000, tmp_path / "x", SETTING)


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
