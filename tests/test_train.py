"""The trainer: resume equivalence, KD math, NaN and Ctrl-C handling, run-directory files, CLI."""
from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from torch.utils.data import Dataset, TensorDataset

from reshape.cli import cli
from reshape.data import Splits
from reshape.errors import ReshapeError
from reshape.models import build, spec_of
from reshape.runs import WEIGHTS_FILE, RunDir, save_weights
from reshape.spec import ArchSpec, Stage, Stem, save_spec
from reshape.train import (CHECKPOINT_FILE, FeatureTaps, TrainConfig, TrainingInterrupted, kd_loss,
                           fit, load_checkpoint, load_teacher, make_scheduler, read_metrics, save_config,
                           run_epochs, train_model)

CFG = TrainConfig(epochs=3, batch_size=8, lr=0.05, seed=1, device="cpu")


def _data(spec: ArchSpec, n: int, seed: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, spec.in_chans, spec.input_size, spec.input_size, generator=gen)
    return TensorDataset(x, torch.randint(0, spec.num_classes, (n,), generator=gen))


def _model(spec: ArchSpec) -> torch.nn.Module:
    torch.manual_seed(0)
    return build(spec)


class _CtrlCAfter(Dataset):
    """Raises KeyboardInterrupt on item ``stop``: a Ctrl-C in the middle of an epoch."""

    def __init__(self, inner: Dataset, stop: int) -> None:
        self.inner, self.stop, self.served = inner, stop, 0

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        self.served += 1
        if self.served > self.stop:
            raise KeyboardInterrupt
        return self.inner[i]


def test_kd_loss_matches_a_hand_computed_kl():
    # teacher softmax (3/4, 1/4), student (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    student = torch.zeros(1, 2)
    assert kd_loss(student, torch.tensor([[math.log(3), 0.0]]), 1.0).item() == pytest.approx(kl, rel=1e-6)
    # at T = 2 the same softened distributions come from doubled logits, and T^2 = 4 scales the loss
    assert kd_loss(student, torch.tensor([[2 * math.log(3), 0.0]]), 2.0).item() == pytest.approx(4 * kl, rel=1e-6)
    # batchmean: a second, identical row leaves the mean unchanged; equal logits give 0
    both = torch.tensor([[math.log(3), 0.0]] * 2)
    assert kd_loss(torch.zeros(2, 2), both, 1.0).item() == pytest.approx(kl, rel=1e-6)
    assert kd_loss(both, both, 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_resume_after_ctrl_c_ends_bit_identical(tmp_path, tiny_spec):
    data, test = _data(tiny_spec, 32, 0), _data(tiny_spec, 16, 1)
    run_epochs(_model(tiny_spec), tiny_spec, CFG, data, test, tmp_path / "full", progress=False)

    # 32 images / batch 8 = 4 batches per epoch: stop in the middle of epoch 2
    with pytest.raises(TrainingInterrupted, match="epoch 1/3 is saved.*rerun the same command") as info:
        run_epochs(_model(tiny_spec), tiny_spec, CFG, _CtrlCAfter(data, 32 + 12), test, tmp_path / "cut",
                   progress=False)
    assert info.value.completed == 1
    assert load_checkpoint(tmp_path / "cut")["epoch"] == 1
    assert [r["epoch"] for r in read_metrics(tmp_path / "cut")] == [1]
    run_epochs(build(tiny_spec), tiny_spec, CFG, data, test, tmp_path / "cut", resume=True, progress=False)

    full, cut = load_file(tmp_path / "full" / WEIGHTS_FILE), load_file(tmp_path / "cut" / WEIGHTS_FILE)
    assert full.keys() == cut.keys()
    assert all(torch.equal(full[k], cut[k]) for k in full)
    timing = {"images_per_s", "epoch_s"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert strip(read_metrics(tmp_path / "cut")) == strip(read_metrics(tmp_path / "full"))
    # resuming a finished run trains nothing and reports its last epoch
    again = run_epochs(build(tiny_spec), tiny_spec, CFG, data, test, tmp_path / "cut", resume=True, progress=False)
    assert again == read_metrics(tmp_path / "cut")[-1] and again["epoch"] == 3


def test_metrics_jsonl_lr_schedule_and_run_files(tmp_path, tiny_spec):
    cfg = TrainConfig(epochs=3, batch_size=8, lr=0.05, warmup_epochs=1, device="cpu")
    metrics = run_epochs(_model(tiny_spec), tiny_spec, cfg, _data(tiny_spec, 32, 0), _data(tiny_spec, 8, 1),
                         tmp_path, progress=False)
    rows = read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1] == metrics
    assert {"lr", "train_loss", "train_top1", "images_per_s", "epoch_s", "test_top1", "test_top5",
            "test_loss"} <= set(rows[0])
    # 4 steps/epoch, warm-up 4 steps: epoch 1 starts at 1/4 of the peak; epoch 2 starts the cosine
    # at 0.05; epoch 3 starts 4 of 8 cosine steps in: 0.05 * (1 + cos(pi / 2)) / 2 = 0.025
    assert [r["lr"] for r in rows] == pytest.approx([0.0125, 0.05, 0.025])
    assert all(0 <= r["test_top1"] <= r["test_top5"] <= 1 for r in rows)
    assert {p.name for p in tmp_path.iterdir()} == {"spec.json", "train_config.json", WEIGHTS_FILE,
                                                     CHECKPOINT_FILE, "metrics.jsonl"}
    assert json.loads((tmp_path / "train_config.json").read_text())["warmup_epochs"] == 1


def test_step_schedule_drops_at_the_milestones():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt, TrainConfig(epochs=4, schedule="step", milestones=(0.5, 0.75)), 10)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0] * 20 + [0.1] * 10 + [0.01] * 10)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny_spec):
    def poison(step):  # a finite loss in epoch 1, NaN from epoch 2 on
        return torch.tensor(float("nan") if step.epoch == 2 else 0.0)

    with pytest.raises(ReshapeError, match="loss became nan at epoch 2, batch 1.*epoch 1"):
        run_epochs(_model(tiny_spec), tiny_spec, CFG, _data(tiny_spec, 32, 0), None, tmp_path,
                   extra_loss=poison, progress=False)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint["epoch"] == 1
    saved = load_file(tmp_path / WEIGHTS_FILE)
    assert all(torch.isfinite(v).all() for v in saved.values())
    assert all(torch.equal(saved[k], checkpoint["model"][k]) for k in saved)


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint", "damaged or not a reshape checkpoint"),
    (None, "not written by reshape's trainer"),
])
def test_bad_checkpoint_is_refused_and_left_alone(tmp_path, tiny_spec, content, message):
    path = tmp_path / CHECKPOINT_FILE
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
        content = path.read_bytes()
    path.write_bytes(content)
    for resume, expected in ((True, message), (False, "already holds a training run")):
        with pytest.raises(ReshapeError, match=expected):
            run_epochs(_model(tiny_spec), tiny_spec, CFG, _data(tiny_spec, 32, 0), None, tmp_path,
                       resume=resume, progress=False)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]


def test_teacher_kd_feature_taps_and_callbacks(tmp_path, tiny_spec):
    teacher = _model(tiny_spec).eval()
    student = _model(tiny_spec.replace(stages=tuple(Stage(w, 1) for w in (2, 4, 4, 8)),
                                       stem=Stem("cifar", 2, 1)))
    names = ["layer1", "layer4"]
    s_taps, t_taps = FeatureTaps(student, names), FeatureTaps(teacher, names)
    seen = []

    def attention(step):  # SENet-style: compare channel-mean energy maps of student and teacher
        seen.append(step.teacher_logits is not None)
        return sum(((s_taps[n].pow(2).mean(1) - t_taps[n].pow(2).mean(1)) ** 2).mean() for n in names)

    def count_epochs(end):
        end.metrics["callback_epoch"] = end.epoch

    spec = spec_of(student)
    run_epochs(student, spec, CFG, _data(spec, 16, 0), None, tmp_path, teacher=teacher,
               extra_loss=attention, callbacks=[count_epochs], progress=False)
    assert seen == [True] * 6  # 2 batches x 3 epochs, each with teacher logits
    assert [r["callback_epoch"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert t_taps["layer4"].shape[1:] == (16, 2, 2) and s_taps["layer4"].shape[1:] == (8, 2, 2)


def test_teacher_of_another_dataset_is_refused(tmp_path, tiny_spec):
    teacher_dir = tmp_path / "teacher"
    other = tiny_spec.replace(num_classes=5)
    save_spec(other, teacher_dir / "spec.json")
    save_weights(build(other), teacher_dir / WEIGHTS_FILE)
    with pytest.raises(ReshapeError, match="predicts 5 classes from 1x16x16 inputs but the student 3 classes"):
        load_teacher(teacher_dir, tiny_spec)
    save_config(TrainConfig(dataset="mnist"), teacher_dir)
    with pytest.raises(ReshapeError, match="trained on mnist but the student trains on fashion-mnist"):
        load_teacher(teacher_dir, other, "fashion-mnist")
    # the CLI refuses before anything is written
    res = CliRunner().invoke(cli, ["train", "resnet18", "--data", "fashion-mnist-mini", "--width", "4",
                                   "--teacher", str(teacher_dir), "--out", str(tmp_path / "student")])
    assert res.exit_code == 1 and "trained on mnist" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "student").exists()
    # the library call behind it refuses before claiming too
    with pytest.raises(ReshapeError, match="trained on mnist"):
        train_model("resnet18", "fashion-mnist-mini", tmp_path / "student", TrainConfig(epochs=1), width=4,
                    teacher=teacher_dir)
    assert not (tmp_path / "student").exists()


def test_eval_json_reports_accuracy_and_relus(tmp_path, monkeypatch):
    # fashion-mnist geometry (1x28x28, 10 classes), one block per stage
    spec = ArchSpec(block="basic", stages=tuple(Stage(w, 1) for w in (4, 8, 8, 16)),
                    stem=Stem("cifar", 4, 1), num_classes=10, in_chans=1, input_size=28)
    save_spec(spec, tmp_path / "spec.json")
    save_weights(build(spec), tmp_path / WEIGHTS_FILE)
    import reshape.runs._summary as summary

    def loaded_again(*args, **kwargs):
        raise AssertionError("eval loads the run once: summarize counts the network it scored")

    monkeypatch.setattr(summary, "load_run", loaded_again)
    res = CliRunner().invoke(cli, ["eval", str(tmp_path), "--data", "fashion-mnist-mini", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert 0 <= data["top1"] <= data["top5"] <= 1
    # stem 4x28x28 + stage 1 2x(4x28x28) + 2x(8x14x14) + 2x(8x7x7) + 2x(16x4x4)
    assert data["relus"] == 3 * 3136 + 2 * 1568 + 2 * 392 + 2 * 256 == 13_840
    res = CliRunner().invoke(cli, ["eval", str(tmp_path), "--data", "cifar10"])
    assert res.exit_code == 1 and "predicts 10 classes from 1x28x28" in res.output


def test_width_narrows_stem_and_stages_by_one_factor():
    from reshape.accounting import count
    from reshape.models import spec_for

    spec = spec_for("resnet18", "fashion-mnist-mini", 16)
    assert spec.stem.width == 16 and spec.widths == (16, 32, 64, 128) and spec.depths == (2, 2, 2, 2)
    assert (spec.stem.kind, spec.in_chans, spec.input_size, spec.num_classes) == ("cifar", 1, 28, 10)
    # stem 16x28x28, then 4 ReLU layers per stage: 16x28x28, 32x14x14, 64x7x7, 128x4x4
    with torch.device("meta"):
        model = build(spec)
    relus = count(model, (1, 28, 28)).relus
    assert relus == 12_544 + 4 * (12_544 + 6_272 + 3_136 + 2_048) == 108_544


# -- reshape train through train.fit --------------------------------------------------------------
TINY_TRAIN = ["train", "resnet18", "--data", "fashion-mnist-mini", "--width", "4", "--limit", "64",
              "--batch-size", "32", "--epochs", "1"]


def test_cli_train_rerun_reads_back_and_other_settings_are_refused(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    first = CliRunner().invoke(cli, [*TINY_TRAIN, "--out", out])
    assert first.exit_code == 0, first.output
    assert RunDir(out).require_manifest().status == "done"

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must be read back, not trained")

    with monkeypatch.context() as patch:
        patch.setattr("reshape.train._fit.run_epochs", no_training)
        again = CliRunner().invoke(cli, [*TINY_TRAIN, "--out", out])  # rerunning is resuming: no --resume
    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout and "read back, nothing trained" in again.stderr
    longer = CliRunner().invoke(cli, [*TINY_TRAIN, "--out", out, "--epochs", "2"])
    assert longer.exit_code == 1 and "--epochs: 1 -> 2" in longer.output and "--force" in longer.output
    forced = CliRunner().invoke(cli, [*TINY_TRAIN, "--out", out, "--epochs", "2", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "after 2 epochs" in forced.stdout and len(read_metrics(out)) == 2
    gone = CliRunner().invoke(cli, [*TINY_TRAIN, "--out", out, "--resume"])  # issue 24: the ignored option is gone
    assert gone.exit_code == 2 and "No such option '--resume'" in gone.output


def test_train_model_retargets_a_spec_file_saying_how_and_reads_a_finished_run_back(tmp_path):
    """``reshape.train.train_model``: `reshape train` as a call (the demo trains its teacher with it)."""
    from reshape.models import spec_for

    spec_file = tmp_path / "cifar.json"
    save_spec(spec_for("resnet18", "cifar10", 4), spec_file)
    cfg = TrainConfig(epochs=1, batch_size=32)
    with pytest.raises(ReshapeError, match="retarget"):
        train_model(str(spec_file), "fashion-mnist-mini", tmp_path / "run", cfg, limit=64)
    assert not (tmp_path / "run").exists()
    said = []
    done = train_model(str(spec_file), "fashion-mnist-mini", tmp_path / "run", cfg, limit=64, retarget=True,
                       log=said.append)
    assert len(said) == 1 and said[0].startswith("retargeted: ") and not done.cached
    assert spec_of(done.model).in_chans == 1 and done.top1 is not None
    again = train_model(str(spec_file), "fashion-mnist-mini", tmp_path / "run", cfg, limit=64, retarget=True)
    assert again.cached and again.metrics == done.metrics and again.fingerprint == done.fingerprint


def test_cli_train_distills_from_a_loaded_teacher_run(tmp_path):
    teacher = str(tmp_path / "teacher")
    assert CliRunner().invoke(cli, [*TINY_TRAIN, "--out", teacher]).exit_code == 0
    student = str(tmp_path / "student")
    res = CliRunner().invoke(cli, [*TINY_TRAIN, "--out", student, "--teacher", teacher])
    assert res.exit_code == 0, res.output
    manifest = RunDir(student).require_manifest()
    assert manifest.parent == teacher and manifest.params["teacher"] == RunDir(teacher).weights_digest()


def test_seed_alone_decides_initial_and_trained_weights(tmp_path, tiny_spec):
    """fit seeds before it builds: what ran earlier in the process does not reach the weights."""
    data = Splits("synthetic", _data(tiny_spec, 16, 0), _data(tiny_spec, 8, 1))
    cfg = TrainConfig(epochs=1, batch_size=8, lr=0.05, seed=7, device="cpu")
    starts = []

    def keep_start(model):
        starts.append({k: v.clone() for k, v in model.state_dict().items()})

    for name, earlier_work in (("a", 1), ("b", 1000)):
        torch.rand(earlier_work)  # other work before the run moves the global RNG differently
        fit(tmp_path / name, tiny_spec, cfg, data, init=keep_start, progress=False)
    assert starts[0].keys() == starts[1].keys()
    assert all(torch.equal(starts[0][k], starts[1][k]) for k in starts[0])
    assert (tmp_path / "a" / WEIGHTS_FILE).read_bytes() == (tmp_path / "b" / WEIGHTS_FILE).read_bytes()


def test_gate_lr_puts_soft_mask_gates_in_their_own_group_without_decay(tiny_spec):
    """SNL trains its gates at their own lr beside the weights (the published 1e-3)."""
    from reshape.layers import SoftMaskReLU
    from reshape.models import build
    from reshape.train import make_optimizer

    model = build(tiny_spec)
    model.act1 = SoftMaskReLU((4, 16, 16))
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, gate_lr=1e-2, weight_decay=5e-4, schedule="constant")
    groups = make_optimizer(model, cfg).param_groups
    gate = [g for g in groups if any(p is model.act1.alpha for p in g["params"])]
    assert len(gate) == 1 and gate[0]["lr"] == 1e-2 and gate[0]["weight_decay"] == 0.0
    others = [g for g in groups if g is not gate[0]]
    assert {g["lr"] for g in others} == {1e-3}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    conv = model.conv1.weight
    assert any(p is conv for g in others if g["weight_decay"] == 5e-4 for p in g["params"])


def test_constant_schedule_keeps_the_lr(tiny_spec):
    from reshape.models import build

    model = build(tiny_spec)
    cfg = TrainConfig(epochs=3, lr=0.05, schedule="constant")
    opt = make_scheduler_for(model, cfg)
    assert opt == [0.05] * 30


def make_scheduler_for(model, cfg, steps=10):
    from reshape.train import make_optimizer

    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, steps)
    lrs = []
    for _ in range(cfg.epochs * steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_ce_weight_is_validated_and_defaults_to_the_convex_mix():
    assert TrainConfig(kd_alpha=0.5).ce_weight is None
    assert TrainConfig(kd_alpha=0.5, ce_weight=0.1).ce_weight == 0.1
    with pytest.raises(ReshapeError, match="ce_weight must be a finite number >= 0"):
        TrainConfig(ce_weight=-0.1)
