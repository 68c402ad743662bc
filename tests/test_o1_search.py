"""O(1) design against search (issue 26): a family given to the synthesis rules, the params that
fix it, pipeline search spaces, and a study warm-started with the synthesized network.

A tiny teacher (ResNet18 at width 4 on 256 fashion-mnist-mini images, 64 more for validation,
1 epoch) serves the module; trials fit it with the registered hybrenet_snl pipeline.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reshape import tables
from reshape.analytic import total_relus
from reshape.deepreshape import Shape, backbone_spec, synthesize
from reshape.errors import BudgetUnreachable, ReshapeError
from reshape.methods import get_method, params_key, setting_config, setting_splits
from reshape.methods.hybrenet import base_spec, synthesized_shape
from reshape.models import apply_preset, spec_for
from reshape.runs import load_trained
from reshape.search import load_space, open_storage, parse, search_pipeline, warm_start_trials
from reshape.setting import Setting
from reshape.train import fit

DATA = "fashion-mnist-mini"
SETTING = Setting(data=DATA, limit=256, val=64, epochs=2, batch_size=64, progress=False)
RESNET18 = apply_preset(backbone_spec("resnet18"), tables.dataset_preset("cifar100"))  # 557,056 ReLUs


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("o1") / "teacher"
    fit(out, spec_for("resnet18", DATA, 4), setting_config(SETTING, 1, 0.1), setting_splits(SETTING), progress=False)
    return out


# -- a given family -------------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.25, 0.33, 0.5])
def test_the_rules_own_shape_gives_their_network(fraction):
    budget = int(fraction * total_relus(RESNET18))
    spec, why = synthesize("resnet18", "cifar100", budget)
    again, given = synthesize("resnet18", "cifar100", budget, shape=why.shape(spec.depths))
    assert again == spec and given.regime == "given" and given.relus == why.relus


def test_a_given_shape_is_solved_for_the_budget():
    # 2x2x2x, stage 1 culled, thinned, depths 2,1,1,1 at 180K ReLUs. Counted by hand on the
    # spec: stage 1 culled keeps no ReLUs; thinning drops each block's post-add ReLU, so a
    # 1-block stage at width w and HxW keeps w*H*W (its inner ReLU): stage 2 2m*16*16,
    # stage 3 4m*8*8, stage 4 8m*4*4, the stem (with stage 1) none: 512m + 256m + 128m = 896m
    # <= 180,000 -> m = 200 (200.89 floored onto the 8-unit grid: 200), 179,200 ReLUs.
    spec, why = synthesize("resnet18", "cifar100", 180_000, shape=Shape((2, 2, 2), (1,), True, (2, 1, 1, 1)))
    assert spec.depths == (2, 1, 1, 1) and spec.widths == (200, 400, 800, 1600)
    assert why.relus == total_relus(spec) == 179_200 and spec.name == "HRN-2x2x2x-m200-cull1-d2111-thin"


def test_a_loose_mac_cap_does_not_bind():
    # Was: a cap far above the network's MACs searched widths past what a spec allows (SpecError).
    free, _ = synthesize("resnet18", "cifar100", 180_000)
    loose, why = synthesize("resnet18", "cifar100", 180_000, macs=10**15)
    assert loose == free and not any("MAC budget binds" in r for r in why.reasons)


def test_a_shape_that_does_not_fit_the_backbone_is_one_error():
    with pytest.raises(ReshapeError, match=r"multipliers \[2, 2\] must be 3 .*culled stages \[5\].*depths \[2, 1, 1\]"):
        synthesize("resnet18", "cifar100", 180_000, shape=Shape((2, 2), (5,), True, (2, 1, 1)))


def test_shape_params_are_field_by_field_and_keep_old_keys():
    method = get_method("hybrenet_snl")
    plain = method.params("short")
    assert not any(k in params_key(plain) for k in ("multipliers", "cull", "thin", "depths"))  # old runs read back
    spec, why = base_spec(RESNET18, "cifar100", 50_000, plain)  # 2 x 50K = 18% -> relu-lean, 2x5x3x culled
    assert why.regime == "relu-lean" and why.culled == (1,)
    wide, _ = base_spec(RESNET18, "cifar100", 50_000, method.params("short", multipliers=[5, 5, 3]))
    assert wide.name.startswith("HRN-5x5x3x") and wide.name.endswith("-cull1")  # the rest is the rules' choice
    values = synthesized_shape(RESNET18, "cifar100", 50_000, plain)
    assert values == {"multipliers": (2, 5, 3), "cull": (1,), "thin": False, "depths": (2, 2, 2, 2)}
    assert base_spec(RESNET18, "cifar100", 50_000, method.params("short", **values))[0] == spec


# -- pipeline spaces ------------------------------------------------------------------------------
def test_the_bundled_pipeline_space():
    space = load_space("hybrenet_snl")
    assert (space.family, space.method, space.preset) == ("pipeline", "hybrenet_snl", "short")
    assert [p.name for p in space.params] == ["factor", "multipliers", "cull", "thin", "depths", "macs"]


@pytest.mark.parametrize("data, message", [
    ({"method": "nope", "preset": None, "params": {"lr": {"choices": [0.1]}}}, "'method' must be a registered"),
    ({"method": "hybrenet_snl", "preset": "long", "params": {"lr": {"choices": [0.1]}}}, "'preset' must be null"),
    ({"method": "hybrenet_snl", "preset": None, "params": {}}, "'params' is empty"),
    ({"method": "hybrenet_snl", "preset": None, "params": {"speed": {"choices": [1]}}}, "params.speed.choices.0."),
    ({"method": "hybrenet_snl", "preset": None, "params": {"factor": {"choices": [2, 0]}}}, r"params.factor.choices\[1\]"),
])
def test_bad_pipeline_spaces_name_the_key(data, message):
    with pytest.raises(ReshapeError, match=message):
        parse({"family": "pipeline", **data}, "s.json")


def test_a_warm_start_the_space_cannot_express_is_refused(teacher, tmp_path):
    space = parse({"family": "pipeline", "method": "hybrenet_snl", "preset": "short",
                   "params": {"multipliers": {"choices": [[4, 4, 4]]}}}, "narrow.json")
    spec = load_trained(teacher, DATA).spec
    rule = synthesized_shape(spec, DATA, total_relus(spec) // 2, get_method("hybrenet_snl").params("short"))
    assert rule["multipliers"] != (4, 4, 4)
    with pytest.raises(ReshapeError, match=rf"cannot express the synthesized network for budget .*multipliers is "
                                           rf"\{list(rule['multipliers'])}, not among the choices \[\[4, 4, 4\]\]"):
        warm_start_trials(space, spec, DATA, [total_relus(spec) // 2])
    with pytest.raises(ReshapeError, match="cannot express"):
        search_pipeline(space, teacher, [total_relus(spec) // 2], SETTING, 2, f"journal:{tmp_path}/s.log", "s",
                        tmp_path / "out", warm_start=True)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_fixed_param_serves_a_warm_start_only_where_the_network_is_the_same(teacher):
    spec = load_trained(teacher, DATA).spec
    budget = total_relus(spec) // 2

    def space(macs: float) -> object:
        return parse({"family": "pipeline", "method": "hybrenet_snl", "preset": "short",
                      "params": {"factor": {"choices": [2.0, 3.0]}, "macs": {"choices": [macs]}}}, "capped.json")

    rows = warm_start_trials(space(1000.0), spec, DATA, [budget])  # a cap that does not bind
    assert rows == [{"budget": budget, "factor": 2.0}]  # the fixed param is not a trial param
    with pytest.raises(ReshapeError, match=r"cannot express .* with its macs 1.0 the network differs"):
        warm_start_trials(space(1.0), spec, DATA, [budget])


def test_a_warm_started_study_trains_the_synthesized_network_first(teacher, tmp_path):
    """The warm start's trial is the O(1) network itself: same spec, same training, same top-1
    as the registered pipeline with its default (synthesized) params."""
    spec = load_trained(teacher, DATA).spec
    budget = total_relus(spec) // 2
    space = parse({"family": "pipeline", "method": "hybrenet_snl", "preset": "short",
                   "params": {"factor": {"choices": [2.0, 3.0]}, "multipliers": {"choices": [[5, 5, 3], [2, 5, 3]]},
                              "depths": {"choices": [[2, 2, 2, 2]]}, "cull": {"choices": [[], [1]]},
                              "thin": {"choices": [False]}}}, "small.json")
    lines: list[str] = []
    study = search_pipeline(space, teacher, [budget], SETTING, 2, f"journal:{tmp_path}/s.log", "s", tmp_path / "out",
                            warm_start=True, log=lines.append)
    trials = sorted(study.trials, key=lambda t: t.number)
    first = trials[0]
    assert first.user_attrs["warm_start"] == "synthesize" and first.params["factor"] == 2.0
    rule = synthesized_shape(spec, DATA, budget, get_method("hybrenet_snl").params("short"))
    assert json.loads(first.params["multipliers"]) == list(rule["multipliers"])
    assert first.user_attrs["selected_on"] == "val" and first.values[0] == first.user_attrs["val_top1"]
    o1 = get_method("hybrenet_snl").fit(teacher, budget, tmp_path / "o1", SETTING, get_method("hybrenet_snl").params("short"))
    assert (first.user_attrs["relus"], first.user_attrs["top1"]) == (o1.relus, o1.top1)
    assert len([t for t in trials if t.state.name == "COMPLETE"]) == 2 and any("val" in line for line in lines)
    # Rerun: the study holds its trials; the warm start is not queued twice.
    again = search_pipeline(space, teacher, [budget], SETTING, 2, f"journal:{tmp_path}/s.log", "s", tmp_path / "out",
                            warm_start=True)
    assert len(again.trials) == 2


# -- reshape search with a pipeline space ---------------------------------------------------------
def _search(tmp_path: Path, *args: str) -> Any:
    from click.testing import CliRunner

    from reshape.cli import cli

    return CliRunner().invoke(cli, ["search", "--data", DATA, "--storage", f"journal:{tmp_path}/s.log",
                                    "--study", "s", "--out", str(tmp_path / "out"), "--limit", "256", "--val", "64",
                                    "--epochs", "2", "--batch-size", "64", *args])


@pytest.mark.parametrize("args, message", [
    (["--space", "hybrenet", "--budgets", "5k", "--trials", "1", "--warm-start"], "takes a pipeline space"),
    (["--space", "hybrenet_snl", "--budgets", "5k", "--trials", "1"], "a pipeline space fits a teacher"),
    (["--space", "hybrenet_snl", "--budgets", "5k", "--trials", "0", "--teacher", "x"], "--trials"),
])
def test_bad_pipeline_searches_are_usage_errors(tmp_path, args, message):
    result = _search(tmp_path, *args)
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "out").exists()


def test_an_inexpressible_warm_start_is_a_usage_error_and_writes_nothing(teacher, tmp_path):
    space = tmp_path / "narrow.json"
    space.write_text(json.dumps({"family": "pipeline", "method": "hybrenet_snl", "preset": "short",
                                 "params": {"multipliers": {"choices": [[4, 4, 4]]}}}))
    result = _search(tmp_path, "--space", str(space), "--teacher", str(teacher), "--budgets", "5000",
                     "--trials", "2", "--warm-start")
    assert result.exit_code == 2 and "--warm-start" in result.output and "cannot express" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["narrow.json"]


@pytest.mark.parametrize("warm", [[], ["--warm-start"]])
def test_a_budget_below_the_spaces_smallest_network_is_a_usage_error(teacher, tmp_path, warm):
    """Issue 26's bad input: no network of a HybReNet space reaches 10 ReLUs, so every trial
    would be pruned and the study would never fill (it looped for ever)."""
    space = tmp_path / "plain.json"
    space.write_text(json.dumps({"family": "pipeline", "method": "hybrenet", "preset": None,
                                 "params": {"thin": {"choices": [True, False]}}}))
    result = _search(tmp_path, "--space", str(space), "--teacher", str(teacher), "--budgets", "10",
                     "--trials", "1", *warm)
    assert result.exit_code == 2 and "--budgets" in result.output and "10" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.json"]
    with pytest.raises(BudgetUnreachable, match="no network of search space"):
        search_pipeline(load_space(str(space)), teacher, [10], SETTING, 1, f"journal:{tmp_path}/s.log", "s",
                        tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.json"]


def test_a_worker_gives_up_when_no_trial_reaches_its_budget(teacher, tmp_path, monkeypatch):
    """A space check_reachable does not walk (width scaling): a budget below the width-1
    network prunes every trial, so the worker stops after a run of them with one error."""
    monkeypatch.setattr("reshape.search.objective.UNREACHABLE_IN_A_ROW", 3)
    space = parse({"family": "pipeline", "method": "width", "preset": None,
                   "params": {"lr": {"choices": [0.1, 0.05]}}}, "width.json")
    with pytest.raises(ReshapeError, match="3 trials in a row reached no network within their budget"):
        search_pipeline(space, teacher, [10], SETTING, 1, f"journal:{tmp_path}/s.log", "s", tmp_path / "out")


def test_a_warm_started_search_from_the_command_line(teacher, tmp_path):
    spec = load_trained(teacher, DATA).spec
    space = tmp_path / "small.json"
    space.write_text(json.dumps({"family": "pipeline", "method": "hybrenet_snl", "preset": "short",
                                 "params": {"factor": {"choices": [2.0, 3.0]}}}))
    result = _search(tmp_path, "--space", str(space), "--teacher", str(teacher), "--budgets",
                     str(total_relus(spec) // 2), "--trials", "1", "--warm-start", "--macs", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["warm_start"] == "synthesize" and row["params"]["factor"] == 2.0 and row["val_top1"] is not None
    # --macs is a third objective of a pipeline study too (it was accepted and ignored)
    import optuna

    (trial,) = optuna.load_study(study_name="s", storage=open_storage(f"journal:{tmp_path}/s.log")).trials
    assert trial.values == [row["val_top1"], row["relus"], row["macs"]]
