"""The frontier benchmark's argument presets and its goal verdicts (no training here)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_FILE = Path(__file__).parent.parent / "benchmarks" / "frontier.py"
_spec = importlib.util.spec_from_file_location("frontier", _FILE)
frontier = importlib.util.module_from_spec(_spec)
sys.modules["frontier"] = frontier  # its dataclass looks itself up there
_spec.loader.exec_module(frontier)


def row(method: str, fraction: float, relus: int, top1: float) -> dict:
    return {"method": method, "fraction": fraction, "relus": relus, "top1": top1, "reachable": True}


def test_presets_fill_only_what_was_not_given():
    quick = frontier.parse(["--quick", "--epochs", "4"])
    assert (quick.width, quick.limit, quick.teacher_epochs, quick.epochs) == (8, 6000, 6, 4)
    assert quick.work == "runs/frontier-quick" and quick.methods == list(frontier.METHODS)
    full = frontier.parse([])
    assert (full.width, full.limit, full.epochs, full.work) == (16, None, 8, "runs/frontier")
    assert full.fractions == [0.02, 0.05, 0.1, 0.25, 0.5] and full.ranking == (1, 4, 2, 3)


@pytest.mark.parametrize("argv", [["--methods", "senet,magic"], ["--epochs", "1"], ["--fractions", "a,b"]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        frontier.parse(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_goals_compare_the_best_of_ours_with_snl():
    rows = [row("snl", 0.1, 1000, 0.700), row("senet", 0.1, 1000, 0.705), row("shallow_senet", 0.1, 1000, 0.712),
            row("deepreduce", 0.1, 900, 0.90),  # a baseline never counts as ours
            row("snl", 0.05, 500, 0.650), row("senet", 0.05, 500, 0.640),
            {"method": "hybrenet_senet", "fraction": 0.05, "reachable": False, "why": "too small"}]
    lines = frontier.goals(rows)
    # 10%: best of ours 71.2 vs SNL 70.0 -> +1.20 met; half of 1,000 is 500: senet 64.0 < 70.0
    assert lines[0].startswith("10%: best of ours shallow_senet 71.20% vs SNL 70.00% -> +1.20 points")
    assert lines[0].endswith("(goal >= +1: met)")
    assert "senet 64.00% at 500 (goal: NOT met)" in lines[1]
    # 5%: 64.0 vs 65.0 -> -1.00 not met; nothing of ours at <= 250 ReLUs
    assert lines[2].endswith("-1.00 points (goal >= +1: NOT met)")
    assert lines[3].strip().startswith("no point of ours at <= half of SNL's 500 ReLUs")
