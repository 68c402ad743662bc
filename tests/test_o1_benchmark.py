"""benchmarks/o1_vs_search.py's arithmetic on hand-made trials: the val-selected pick, the pick
among trials with no more MACs than the O(1) network, and the paired differences."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_FILE = Path(__file__).parent.parent / "benchmarks" / "o1_vs_search.py"
_spec = importlib.util.spec_from_file_location("o1_benchmark", _FILE)
bench = importlib.util.module_from_spec(_spec)
sys.modules["o1_benchmark"] = bench
_spec.loader.exec_module(bench)


def trial(number: int, score: float, top1: float, macs: int, feasible: bool = True) -> dict:
    return {"number": number, "score": score, "top1": top1, "macs": macs, "relus": 90, "feasible": feasible,
            "compute": {}, "run_dir": f"t{number}"}


TRIALS = [trial(0, 0.50, 0.52, 1_000), trial(1, 0.70, 0.66, 9_000), trial(2, 0.60, 0.58, 1_500),
          trial(3, 0.90, 0.91, 500, feasible=False)]


def point(seed: int, o1_top1: float, trials: list[dict]) -> dict:
    curve = bench.best_so_far(trials)
    search = {"study": "s", "trials": trials, "curve": curve, "spent": {"image_passes": 100, "seconds": 10.0},
              "wall_s": 1.0}
    return {"fraction": 0.1, "seed": seed, "budget": 100, "design_s": 0.001,
            "o1": {"top1": o1_top1, "relus": 95, "macs": 2_000},
            "o1_spent": {"image_passes": 5, "seconds": 1.0}, "cold": search, "warm": search}


def test_the_pick_is_the_best_feasible_validation_score_within_the_mac_cap():
    assert [t and t["number"] for t in bench.best_so_far(TRIALS)] == [0, 1, 1, 1]  # 3 is infeasible
    assert [t and t["number"] for t in bench.best_so_far(TRIALS, max_macs=2_000)] == [0, 0, 2, 2]
    assert bench.best_so_far(TRIALS, max_macs=100) == [None] * 4


def test_side_by_side_reports_the_search_at_the_o1_networks_macs():
    points = [point(0, 0.54, TRIALS), point(1, 0.56, TRIALS)]
    row = bench.side_by_side(points, [0.1], short_n=2)[0]
    # cold pick: trial 1 (66%); at <= 2,000 MACs: trial 2 (58%); O(1): 54% and 56%
    assert row["cold"]["top1"] == pytest.approx(66.0) and row["cold_o1_macs"]["top1"] == pytest.approx(58.0)
    assert row["o1-cold"]["diff"] == pytest.approx(-11.0) and row["o1-cold"]["se"] == pytest.approx(1.0)
    assert row["o1-cold_o1_macs"]["diff"] == pytest.approx(-3.0)
    assert row["compute_share"] == pytest.approx(10 / 200)
    lines = bench.goals([row], 4, 2)
    assert "the search's pick has 4.5x, 4.5x the O(1) network's MACs" in lines[1]
    assert "among trials with at most its MACs = -3.00 points (SE 1.00, n 2)" in lines[1]
    text = bench.markdown([row], 4, 2, 2)
    assert "| 10% (100) | 2 | 55.00 ± 1.00 | 66.00 ± 0.00 | 66.00 ± 0.00 | 66.00 ± 0.00 | 58.00 ± 0.00 |" in text
    assert "| 10% (100) | -11.00 ± 1.00 | -11.00 ± 1.00 | -3.00 ± 1.00 | +0.00 ± 0.00 |" in text
    # the picks' ReLUs and MACs: O(1) 95 and 2,000; cold and warm trial 1; at <= O(1)'s MACs trial 2
    assert "| 10% (100) | 95 / 90 / 90 / 90 | 0.00M / 0.01M / 0.01M / 0.00M |" in text
    assert "| 10% (100) | 10 / 200 / 200 | 0.050x |" in text


def test_no_trial_as_cheap_as_the_o1_network_is_said():
    cheap_none = [trial(0, 0.5, 0.5, 9_000)]
    row = bench.side_by_side([point(0, 0.5, cheap_none)], [0.1], short_n=1)[0]
    assert "no trial of 30 had as few MACs as the O(1) network" in bench.goals([row], 30, 10)[1]


def test_a_studys_wall_time_counts_overlapping_trials_and_session_gaps_once():
    rows = [{"start": 0.0, "end": 10.0, "worker": "a:1"}, {"start": 5.0, "end": 12.0, "worker": "b:2"},
            {"start": 100.0, "end": 103.0, "worker": "a:3"}, {"start": 101.0, "end": 102.0, "worker": "a:3"},
            {"start": None, "end": None, "worker": None}]
    assert bench.wall(rows) == {"wall_s": 12.0 + 3.0, "workers": 3}
    assert bench.wall([]) == {"wall_s": 0.0, "workers": 0}
