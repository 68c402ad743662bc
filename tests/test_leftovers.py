"""Issue 15, finding 6: what a killed run leaves behind is cleaned up by the next one, and
every result file gets the same permissions.

A kill -9 a few ms after an epoch's metrics line left a ``.model.safetensors.*.tmp``
that a successful rerun kept, and a metrics row with no checkpoint; model.safetensors
was written 0600 (safetensors' own temporary file) while every other file was 0644.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reshape.errors import ReshapeError
from reshape.io import FOREIGN_TEMP_AGE_S, LOCK_FILE, is_temp, remove_stale_temps, write_json
from reshape.methods import Setting, setting_config, setting_splits
from reshape.models import spec_for
from reshape.runs import RunDir, read_metrics, save_weights
from reshape.train import _loop, fit

SETTING = Setting("fashion-mnist-mini", limit=128, batch_size=64, progress=False)
HOST = socket.gethostname()
TIMINGS = ("epoch_s", "images_per_s", "seconds")  # metrics that are wall-clock measurements


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def temp_name(target: str, pid: int, host: str = HOST) -> str:
    """A temporary file name as ``reshape.io.atomic_path`` makes it."""
    return f".{target}.~{pid}@{host}.ab12_xyz.tmp"


def test_a_write_killed_midway_leaves_a_recognisable_temp_that_the_next_claim_removes(tmp_path):
    """A real kill -9 inside an atomic write, then the run is claimed again."""
    run = RunDir(tmp_path / "run")
    run.claim("train", {"x": 1})
    script = ("import os, signal, sys\n"
              "from reshape.io import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n"
              "    tmp.write_bytes(b'half a checkpoint')\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(run / "checkpoint.pt")])
    assert proc.returncode == -signal.SIGKILL
    (left,) = [p for p in run.path.iterdir() if p.name not in ("run.json", LOCK_FILE)]  # the claim's lock aside
    assert is_temp(left) and left.name.startswith(".checkpoint.pt.~")
    run.claim("train", {"x": 1})  # the same run, resumed (and still locked by this process)
    assert sorted(p.name for p in run.path.iterdir()) == [LOCK_FILE, "run.json"]


def test_only_the_temps_of_writers_that_are_gone_are_removed(tmp_path):
    names = {"dead": temp_name("model.safetensors", dead_pid()),
             "alive": temp_name("checkpoint.pt", os.getpid()),  # a write in progress: never touched
             "foreign-old": temp_name("metrics.jsonl", 1, "other-host.example"),
             "foreign-new": temp_name("spec.json", 1, "other-host.example"),
             "not-ours": ".model.safetensors.tmp"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    old = time.time() - FOREIGN_TEMP_AGE_S - 60
    os.utime(tmp_path / names["foreign-old"], (old, old))
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted([names["dead"], names["foreign-old"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["alive"], names["foreign-new"],
                                                                 names["not-ours"]])


def test_a_folder_holding_only_temps_is_empty_for_a_claim(tmp_path):
    """Two workers claiming one new folder: the first one's in-flight temp is not "foreign files"."""
    (tmp_path / temp_name("run.json", os.getpid())).write_bytes(b"{")
    RunDir(tmp_path).claim("study", {"study": "s"})
    assert (tmp_path / "run.json").is_file()


class Killed(BaseException):
    """Stands for a kill -9: nothing after it runs, no handler catches it."""


def test_a_kill_after_an_epochs_metrics_line_resumes_cleanly(tmp_path, monkeypatch):
    """Killed between epoch 2's metrics line and its checkpoint, with a weights write cut
    short: the rerun drops the row that has no checkpoint, removes the temp, and ends
    with the rows (and weights) of a run that was never interrupted."""
    spec = spec_for("resnet18", SETTING.data, 4)
    cfg = setting_config(SETTING, 2, 0.1)
    clean = fit(tmp_path / "clean", spec, cfg, setting_splits(SETTING), progress=False)

    save_checkpoint = _loop.save_checkpoint
    stale = temp_name("model.safetensors", dead_pid())

    def killed_at_epoch_2(run_dir, state):
        if state["epoch"] == 2:
            (Path(run_dir) / stale).write_bytes(b"cut short")
            raise Killed
        save_checkpoint(run_dir, state)

    out = tmp_path / "run"
    monkeypatch.setattr(_loop, "save_checkpoint", killed_at_epoch_2)
    with pytest.raises(Killed):
        fit(out, spec, cfg, setting_splits(SETTING), progress=False)
    monkeypatch.undo()
    assert [r["epoch"] for r in read_metrics(out)] == [1, 2]  # a row of an epoch with no checkpoint
    resumed = fit(out, spec, cfg, setting_splits(SETTING), progress=False)
    assert not any(is_temp(p) for p in out.iterdir())
    timeless = [{k: v for k, v in r.items() if k not in TIMINGS} for r in read_metrics(out)]
    expected = [{k: v for k, v in r.items() if k not in TIMINGS} for r in read_metrics(clean.run)]
    assert [r["epoch"] for r in timeless] == [1, 2] and timeless == expected
    assert (out / "model.safetensors").read_bytes() == (clean.run / "model.safetensors").read_bytes()
    assert resumed.top1 == clean.top1
    # every file the run wrote has the one mode a plain open() would give it
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert set(modes.values()) == {0o666 & ~umask}, modes


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_result_files_respect_the_umask_like_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_weights(torch.nn.Linear(2, 2), tmp_path / "model.safetensors")
        write_json(tmp_path / "run.json", {})
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == dict.fromkeys(["model.safetensors", "run.json", "plain"], 0o666 & ~umask)


def test_a_metrics_line_cut_short_is_no_row_and_a_damaged_one_is_an_error(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "lo')
    assert read_metrics(tmp_path) == [{"epoch": 1}]
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(ReshapeError, match="metrics.jsonl"):
        read_metrics(tmp_path)
