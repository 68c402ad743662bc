"""reshape search: space validation, closed-form designs, trials stored, resume, kill, two workers.

Proxy training is tiny: HybReNets of width 4-8 with one block per stage, 1 epoch on 64
images of the packaged fashion-mnist-mini (28x28), scored on 100 test images. At 28x28 the maps are 28/14/7/4,
so HRN-2x2x2x with depths 1,1,1,1 and base width m has
    stem 784m + stage1 2*784m + stage2 2*196*2m + stage3 2*49*4m + stage4 2*16*8m = 3784m ReLUs:
m = 4 -> 15,136 (fits 20k), m = 8 -> 30,272 (fits 40k).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import FixedTrial, TrialState

from reshape.cli import cli
from reshape.accounting import count_spec
from reshape.errors import ReshapeError
from reshape.search import Objective, design, load_space, open_storage, parse
from reshape.spec import ArchSpec
from reshape.train import TrainConfig

DATA = "fashion-mnist-mini"
SPACE = {
    "family": "hybrenet", "backbone": "resnet18",
    "multipliers": {"choices": [[2, 2, 2]]},
    "base_width": {"low": 4, "high": 8, "step": 4},
    "depths": {"choices": [[1, 1, 1, 1]]},
    "cull": {"choices": [[], [1]]},
    "thin": {"choices": [False, True]},
    "relu_optimizer": {"choices": ["none"]},
    "senet": {"expansion": {"choices": [2]}, "allocation": {"choices": ["uniform"]},
              "granularity": {"choices": ["neuron"]}},
    "proxy": {"epochs": 1, "limit": 64, "test_limit": 100},
}
FAST = ["--batch-size", "32", "--lr", "0.05"]


@pytest.fixture
def space_file(tmp_path: Path) -> str:
    path = tmp_path / "space.json"
    path.write_text(json.dumps(SPACE))
    return str(path)


def search_args(space: str, storage: str, out: Path, trials: int) -> list[str]:
    return ["search", "--space", space, "--data", DATA, "--budgets", "20k,40k", "--trials", str(trials),
            "--storage", storage, "--study", "s", "--out", str(out), *FAST]


def study_of(storage: str) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=open_storage(storage))


# -- spaces ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hybrenet", "resnet"])
def test_bundled_spaces_load(name):
    space = load_space(name)
    assert space.family == name and space.backbone == "resnet18" and space.epochs >= 1


def test_the_proxy_training_is_the_spaces_unless_the_caller_gives_its_own():
    space = load_space("hybrenet")
    assert space.proxy() == (space.epochs, space.limit)
    assert space.proxy(epochs=7) == (7, space.limit) and space.proxy(limit=99) == (space.epochs, 99)


def _edited(path: tuple[str, ...], value) -> dict:
    data = json.loads(json.dumps(SPACE))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize("path, value, message", [
    (("widht",), 3, "'widht' is not a known key here"),
    (("senet", "temperature"), 3, "'senet.temperature' is not a known key here"),
    (("base_width", "low"), "8", "'base_width.low' must be a positive integer, got '8'"),
    (("base_width",), {"low": 16, "high": 8, "step": 4}, "'base_width' is an empty range: low 16 > high 8"),
    (("cull",), {"choices": []}, "'cull.choices' is empty"),
    (("cull",), {"choices": [[5]]}, "'cull.choices[0]' must be a list of distinct stage numbers in 1..4"),
    (("thin",), {"choices": ["yes"]}, "'thin.choices[0]' must be true or false"),
    (("depths",), {"low": 1, "high": 2}, "'depths' values must be a list of 4 positive block counts"),
    (("relu_optimizer",), {"choices": ["snl"]}, "must be one of none, senet, got 'snl'"),
    (("family",), "vgg", "'family' must be one of hybrenet, resnet"),
    (("proxy", "epochs"), 0, "'proxy.epochs' must be a positive integer"),
])
def test_space_errors_name_the_key(path, value, message):
    with pytest.raises(ReshapeError, match="^search space my.json: ") as err:
        parse(_edited(path, value), "my.json")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_key_and_unknown_bundled_name(tmp_path):
    data = dict(SPACE)
    del data["thin"]
    with pytest.raises(ReshapeError, match="'thin' is missing"):
        parse(data, "x")
    with pytest.raises(ReshapeError, match="unknown search space 'hybrid'.*hybrenet, hybrenet_snl, resnet"):
        load_space("hybrid")


# -- designs (no training) -------------------------------------------------------------------------
def _trial(budget: int, optimizer: str = "none") -> FixedTrial:
    return FixedTrial({"budget": budget, "relu_optimizer": optimizer, "cull": "[]", "thin": False})


@pytest.mark.parametrize("budget, width, relus", [(20_000, 4, 15_136), (40_000, 8, 30_272),
                                                  (10_000, 4, 15_136)])  # 10k: even m=4 is over
def test_width_is_solved_in_closed_form_for_the_budget(budget, width, relus):
    space = parse(_edited(("relu_optimizer",), {"choices": ["none", "senet"]}), "t")
    d = design(space, _trial(budget), [10_000, 20_000, 40_000], DATA)
    assert d.spec.stem.width == width and d.spec.widths == (width, 2 * width, 4 * width, 8 * width)
    assert count_spec(d.spec).relus == relus == 3784 * width


def test_resnet_space_reproduces_deepreduce_57k():
    """Width 0.5, stage 1 culled, thinned: DeepReDuce's published CIFAR-100 57K model, 57,344 ReLUs."""
    trial = FixedTrial({"budget": 57_344, "relu_optimizer": "none", "width_multiplier": 0.5,
                        "depths": "[2,2,2,2]", "cull": "[1]", "thin": True})
    d = design(load_space("resnet"), trial, [57_344], "cifar100")
    assert d.spec.widths == (32, 64, 128, 256) and count_spec(d.spec).relus == 57_344


def test_senet_design_is_sized_for_expansion_times_budget():
    space = parse(_edited(("relu_optimizer",), {"choices": ["none", "senet"]}), "t")
    d = design(space, _trial(20_000, "senet"), [20_000], DATA)
    assert (d.relu_optimizer, d.allocation, d.spec.stem.width) == ("senet", "uniform", 8)  # 2 x 20k -> m = 8


def _objective(space, tmp_path, epochs=1):
    from reshape.data import splits

    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=0.05, dataset=DATA)
    return Objective(space, [20_000], cfg, splits(DATA, limit=64, test_limit=100), tmp_path, macs=True,
                     progress=False)


@dataclass(frozen=True)
class FakeSENetParams:
    allocation: str = "sensitivity"
    granularity: str = "neuron"
    lr: float = 0.1


def test_senet_step_runs_the_registered_method_with_the_trials_params(tmp_path, monkeypatch):
    from reshape.deepreduce import cull
    from reshape.methods import Method
    from reshape.methods._registry import _REGISTRY
    from reshape.models import build
    from reshape.runs import SPEC_FILE, WEIGHTS_FILE, save_weights
    from reshape.spec import save_spec

    seen = {}

    def fake_fit(job, p):
        """Stands in for SENet: remembers what it was asked, leaves a network with stage 1 culled."""
        seen.update(params=p, setting=job.setting, teacher=job.teacher.path, budget=job.budget)
        spec = cull(job.teacher.spec, [1])
        save_spec(spec, job.out / SPEC_FILE)
        save_weights(build(spec), job.out / WEIGHTS_FILE)
        return {"top1": 0.25}

    monkeypatch.setitem(_REGISTRY, "senet", Method("senet", FakeSENetParams, fake_fit, "ours", "fake",
                                                   FakeSENetParams()))
    space = parse(_edited(("relu_optimizer",), {"choices": ["senet"]}), "t")
    trial = FixedTrial({"budget": 20_000, "cull": "[]", "thin": False})
    top1, relus, macs = _objective(space, tmp_path)(trial)
    assert seen["params"] == FakeSENetParams("uniform", "neuron", 0.05)  # the space's allocation, the study's lr
    assert seen["teacher"] == tmp_path / "trial-0000" / "arch" and seen["budget"] == 20_000
    setting = seen["setting"]
    assert (setting.data, setting.limit, setting.seed, setting.batch_size) == (DATA, 64, 0, 32)
    assert setting.epochs == 2  # locations and final stage, one proxy epoch each
    attrs = trial.user_attrs
    spec = ArchSpec.from_dict(attrs["spec"])
    assert spec.relu_state("act1").state == "removed" and top1 == attrs["top1"] == 0.25
    assert relus == attrs["relus"] == count_spec(spec).relus and macs == attrs["macs"] == count_spec(spec).macs


def test_senet_trial_meets_its_budget(tmp_path):
    space = parse(_edited(("relu_optimizer",), {"choices": ["senet"]}), "t")
    trial = FixedTrial({"budget": 20_000, "cull": "[]", "thin": False})
    top1, relus, macs = _objective(space, tmp_path)(trial)
    attrs = trial.user_attrs
    assert relus == attrs["relus"] == 20_000 and attrs["feasible"] and attrs["trained"]
    assert 0 <= top1 == attrs["top1"] <= 1 and macs == attrs["macs"] > 0
    assert sum(layer.state == "masked" for layer in ArchSpec.from_dict(attrs["spec"]).relus) > 0
    assert (tmp_path / "trial-0000" / "arch" / "model.safetensors").is_file()
    assert (tmp_path / "trial-0000" / "senet" / "model.safetensors").is_file()


# -- studies ---------------------------------------------------------------------------------------
def test_search_stores_trials_and_resumes_to_the_total(tmp_path, space_file):
    storage = f"sqlite:///{tmp_path / 'search.db'}"  # the RDB storage; the tests below use a journal
    res = CliRunner().invoke(cli, search_args(space_file, storage, tmp_path / "runs", 2))
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, [*search_args(space_file, storage, tmp_path / "runs", 3), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output[res.output.index("[\n"):])
    study = study_of(storage)
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert [r["number"] for r in rows] == [0, 1, 2]
    for trial, row in zip(study.trials, rows):
        attrs = trial.user_attrs
        spec = ArchSpec.from_dict(attrs["spec"])
        assert attrs["relus"] == count_spec(spec).relus == row["relus"] <= attrs["budget"]
        assert attrs["macs"] == count_spec(spec).macs and row["feasible"] is True
        assert trial.values == [attrs["top1"], attrs["relus"]] and 0 <= attrs["top1"] <= 1
        assert trial.constraints == {"relus_over_budget": attrs["relus"] - attrs["budget"]}
        assert Path(attrs["run_dir"], "model.safetensors").is_file()
    res = CliRunner().invoke(cli, [*search_args(space_file, storage, tmp_path / "runs", 3), "--macs"])
    assert res.exit_code == 1 and "was started with macs False, not True" in res.output


def _worker(space: str, storage: str, out: Path, trials: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reshape", *search_args(space, storage, out, trials), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_worker_trial_is_failed_and_resumed_in_its_run_dir(tmp_path, space_file):
    storage, runs = f"journal:{tmp_path / 'search.log'}", tmp_path / "runs"
    longer = ["--epochs", "2", "--limit", "128"]  # killed after epoch 1 of 2 is saved
    worker = _worker(space_file, storage, runs, 1, *longer)
    checkpoint = runs / "trial-0000" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None and not checkpoint.exists():
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL, "the worker ended before it could be killed"
    first_epoch = (runs / "trial-0000" / "metrics.jsonl").read_text().splitlines()[0]
    res = CliRunner().invoke(cli, [*search_args(space_file, storage, runs, 1), *longer])
    assert res.exit_code == 0, res.output
    assert "trials [0] were left running by a dead worker" in res.output
    study = study_of(storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].params == study.trials[0].params
    assert study.trials[1].user_attrs["run_dir"] == str(runs / "trial-0000")
    rows = (runs / "trial-0000" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2 and rows[0] == first_epoch  # epoch 1 kept, only epoch 2 trained again


def test_two_workers_share_one_journal(tmp_path, space_file):
    storage = f"journal:{tmp_path / 'search.log'}"
    workers = [_worker(space_file, storage, tmp_path / "runs", 4) for _ in range(2)]
    for w in workers:
        output, _ = w.communicate(timeout=300)
        assert w.returncode == 0, output
    study = study_of(storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    assert len({t.number for t in complete}) == len({t.user_attrs["run_dir"] for t in complete}) == 4
    assert all(t.state == TrialState.PRUNED for t in study.trials if t not in complete)  # surplus only


@pytest.mark.parametrize("url", ["sqlite:////nonexistent-dir/x.db", "nosuchdb://host/db"])
def test_bad_storage_is_one_line_error(tmp_path, space_file, url):
    res = CliRunner().invoke(cli, search_args(space_file, url, tmp_path / "runs", 1))
    assert res.exit_code == 1
    assert res.output.startswith(f"error: cannot open storage '{url}'") and res.output.count("\n") == 1
