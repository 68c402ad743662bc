"""Issue 15, finding 7: the CLI sets OpenMP up for a shared machine before torch loads.

Each case starts a fresh interpreter (the test process has torch loaded already, with
this suite's own settings from conftest.py), runs ``reshape.cli.main`` there and reports
the environment and the thread count torch then uses.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reshape import threads

PROBE = """
import json, os, sys
cpus = json.loads(sys.argv[1])
if cpus:
    os.sched_setaffinity(0, cpus)
from reshape.cli import main
sys.argv = ["reshape", *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
loaded = "torch" in sys.modules
import torch
print(json.dumps({"policy": os.environ.get("OMP_WAIT_POLICY"), "threads": os.environ.get("OMP_NUM_THREADS"),
                  "torch_threads": torch.get_num_threads(), "torch_loaded_by_main": loaded}))
"""


def probe(env: dict[str, str], cpus: list[int] | None = None, *args: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cpus or []), *(args or ["--version"])],
                          env={**clean, **env}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_main_sets_a_passive_policy_and_the_available_cpus_before_torch():
    got = probe({})
    assert got["policy"] == "PASSIVE"
    assert int(got["threads"]) == got["torch_threads"] == threads.available_cpus()
    assert not got["torch_loaded_by_main"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_the_thread_count_follows_the_cpus_this_process_may_use():
    got = probe({}, [sorted(os.sched_getaffinity(0))[0]])  # pinned to one CPU, as taskset -c 0 would
    assert (got["threads"], got["torch_threads"]) == ("1", 1)


def test_what_the_user_set_is_left_alone():
    got = probe({"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"})
    assert (got["policy"], got["threads"], got["torch_threads"]) == ("ACTIVE", "1", 1)
    got = probe({"OMP_WAIT_POLICY": "ACTIVE"})  # one set, the other still chosen
    assert (got["policy"], got["threads"]) == ("ACTIVE", str(threads.available_cpus()))


def test_help_stays_fast_and_does_not_load_torch():
    assert not probe({}, None, "--help")["torch_loaded_by_main"]


def test_nothing_changes_once_torch_is_loaded():
    """Called from inside a program that imported torch: its threads are its own choice."""
    env: dict[str, str] = {}
    assert "torch" in sys.modules and threads.configure_threads(env) == {} and env == {}


@pytest.mark.parametrize("cpu_max, expected", [("150000 100000", 2), ("50000 100000", 1), ("max 100000", None)])
def test_a_cgroup_cpu_quota_caps_the_thread_count(tmp_path, monkeypatch, cpu_max, expected):
    # cpu.max "QUOTA PERIOD": 150000/100000 = 1.5 CPUs -> 2 threads, 0.5 -> 1; "max" = no quota
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    monkeypatch.setattr(threads, "_CGROUP_V2", tmp_path / "cpu.max")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert threads.available_cpus() == (affinity if expected is None else min(affinity, expected))


def test_configure_threads_sets_only_what_is_unset(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")  # as before torch is imported
    env = {"OMP_NUM_THREADS": "2"}
    assert threads.configure_threads(env) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env == {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
