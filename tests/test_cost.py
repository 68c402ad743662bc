from __future__ import annotations

import json

import pytest

from reshape.cost import KEYS, estimate, load_costs
from reshape.errors import ReshapeError
from reshape.tables import load


def test_every_constant_has_a_source():
    for protocol, entries in load("pi_costs").items():
        for key in KEYS:
            assert entries[key]["source"].strip(), f"{protocol}.{key} has no source"


def test_delphi_resnet18_matches_published_scale():
    e = estimate(557_056, 555_468_800, 17, "delphi")
    assert e.offline_bytes == 557_056 * 17_000  # 9.47 GB; DELPHI reports 9.51 GB
    assert e.online_bytes == 557_056 * 1_200
    assert e.online_s == pytest.approx(557_056 * 18e-6)
    assert e.offline_s == pytest.approx(557_056 * 30e-6 + 555_468_800 * 0.4e-6)


def test_override_file_changes_only_named_constants(tmp_path):
    f = tmp_path / "costs.json"
    f.write_text(json.dumps({"delphi": {"round_trip_ms": 40, "relu_online_us": {"value": 10, "source": "me"}}}))
    table = load_costs(f)
    assert table["delphi"]["round_trip_ms"] == 40.0
    assert table["delphi"]["relu_online_us"] == 10.0
    assert table["delphi"]["relu_offline_bytes"] == 17_000
    e = estimate(1000, 0, 5, "delphi", table)
    assert e.online_s == pytest.approx(1000 * 10e-6 + 5 * 0.040)


@pytest.mark.parametrize("content, message", [
    ({"delphi": {"relu_speed": 1}}, "unknown constant 'delphi.relu_speed'"),
    ({"delphi": {"relu_online_us": -1}}, "must be a number >= 0"),
    ({"mine": {"relu_online_us": 1}}, "new protocol 'mine' lacks"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_override_files(tmp_path, content, message):
    f = tmp_path / "costs.json"
    f.write_text(json.dumps(content))
    with pytest.raises(ReshapeError, match=message):
        load_costs(f)


def test_unknown_protocol():
    with pytest.raises(ReshapeError, match="unknown protocol 'gazelle'"):
        estimate(1, 1, 1, "gazelle")


def test_every_profile_says_what_it_knows_of_smooth_ops():
    for protocol, entries in {**load("pi_costs"), **load("pi_costs_measured")}.items():
        assert entries["smooth"]["source"].strip(), f"{protocol}.smooth has no source"
        for op, constants in entries["smooth"].items():
            if op != "source":
                assert all(c["source"].strip() for c in constants.values()), f"{protocol}.smooth.{op}"


def test_smooth_ops_without_a_published_cost_give_no_estimate():
    """Issue 25: a ViT's estimate must not be a ReLU-only number."""
    e = estimate(0, 1000, 3, "cheetah", smooth_ops={"gelu": 100, "softmax": 50, "rsqrt": 0})
    assert e.unpriced == ("gelu", "softmax")  # rsqrt ran 0 times: nothing to price
    assert e.to_dict() == {"protocol": "cheetah", "estimate": None, "unpriced": ["gelu", "softmax"]}
    assert estimate(10, 0, 1, "cheetah", smooth_ops={}).to_dict()["online_bytes"] == 10 * 239


def test_smooth_constants_from_a_cost_file(tmp_path):
    f = tmp_path / "costs.json"
    f.write_text(json.dumps({"cheetah": {"smooth": {"gelu": {"online_bytes": 2000, "online_us": {"value": 5}}}}}))
    table = load_costs(f)
    e = estimate(10, 0, 0, "cheetah", table, smooth_ops={"gelu": 100})
    assert e.unpriced == ()
    assert e.online_bytes == 10 * 239 + 100 * 2000
    assert e.online_s == pytest.approx(10 * 15.6e-6 + 100 * 5e-6)
    f.write_text(json.dumps({"cheetah": {"smooth": {"gelu": {"bytes": 1}}}}))
    with pytest.raises(ReshapeError, match="unknown constant 'cheetah.smooth.gelu.bytes'"):
        load_costs(f)
    f.write_text(json.dumps({"cheetah": {"smooth": {"gelu": 1}}}))
    with pytest.raises(ReshapeError, match="'cheetah.smooth' must map ops to objects"):
        load_costs(f)


def test_unknown_protocol_suggests_the_close_one():
    with pytest.raises(ReshapeError, match=r"unknown protocol 'chetah' \(did you mean cheetah"):
        estimate(1, 1, 1, "chetah")
