"""PI cost model: (ReLUs, MACs, nonlinear layers) -> latency and communication.

The constants live in ``tables/pi_costs.json``, one entry per protocol, each value
with its published source. Profiles fitted to measurements (``reshape measure``,
``scripts/fit_pi_costs.py``) live apart in ``tables/pi_costs_measured.json``: they are
named explicitly (``--protocol spu-cheetah``), never added to the published profiles
that reports list for every result. A user file with the same layout overrides any subset
(``{"delphi": {"relu_online_us": 20}}``) or adds a protocol (all keys given).

    online  latency = ReLUs * relu_online_us  + MACs * mac_online_us  + layers * round_trip_ms
    offline latency = ReLUs * relu_offline_us + MACs * mac_offline_us
    online  bytes   = ReLUs * relu_online_bytes + MACs * mac_online_bytes
    offline bytes   = ReLUs * relu_offline_bytes

These are first-order estimates for comparing networks, not protocol simulations.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from . import tables
from .errors import ReshapeError

KEYS = ("relu_offline_bytes", "relu_online_bytes", "relu_online_us", "relu_offline_us",
        "mac_offline_us", "mac_online_us", "mac_online_bytes", "round_trip_ms")


@dataclass(frozen=True)
class CostEstimate:
    protocol: str
    online_s: float
    offline_s: float
    online_bytes: float
    offline_bytes: float

    @property
    def total_s(self) -> float:
        return self.online_s + self.offline_s

    @property
    def total_bytes(self) -> float:
        return self.online_bytes + self.offline_bytes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_s": self.total_s, "total_bytes": self.total_bytes}


def load_costs(path: str | os.PathLike[str] | None = None,
               measured: bool = False) -> dict[str, dict[str, float]]:
    """Protocol -> constant -> value: the shipped table (with the measured profiles when
    ``measured``), overridden by the file at ``path``."""
    names = ("pi_costs", "pi_costs_measured") if measured else ("pi_costs",)
    table = {p: {k: entry[k]["value"] for k in KEYS}
             for name in names for p, entry in tables.load(name).items()}
    if path is None:
        return table
    from .io import read_json

    user = read_json(path, "cost file")
    if not isinstance(user, dict):
        raise ReshapeError(f"cost file {path}: must be a JSON object of protocols")
    for protocol, entries in user.items():
        if protocol.startswith("_"):
            continue
        if not isinstance(entries, dict):
            raise ReshapeError(f"cost file {path}: '{protocol}' must be an object of constants")
        merged = dict(table.get(protocol, {}))
        for key, value in entries.items():
            if key in ("description",):
                continue
            if key not in KEYS:
                raise ReshapeError(f"cost file {path}: unknown constant '{protocol}.{key}'; "
                                   f"known: {', '.join(KEYS)}")
            value = value["value"] if isinstance(value, dict) and "value" in value else value
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ReshapeError(f"cost file {path}: '{protocol}.{key}' must be a number >= 0")
            merged[key] = float(value)
        missing = [k for k in KEYS if k not in merged]
        if missing:
            raise ReshapeError(f"cost file {path}: new protocol '{protocol}' lacks {', '.join(missing)}")
        table[protocol] = merged
    return table


def estimate(relus: int, macs: int, layers: int, protocol: str = "delphi",
             costs: dict[str, dict[str, float]] | None = None) -> CostEstimate:
    """Cost of one inference of a network with these counts under ``protocol``."""
    costs = costs if costs is not None else load_costs(measured=True)
    if protocol not in costs:
        raise ReshapeError(f"unknown protocol '{protocol}'; known: {', '.join(costs)}")
    c = costs[protocol]
    return CostEstimate(
        protocol=protocol,
        online_s=(relus * c["relu_online_us"] + macs * c["mac_online_us"]) * 1e-6
        + layers * c["round_trip_ms"] * 1e-3,
        offline_s=(relus * c["relu_offline_us"] + macs * c["mac_offline_us"]) * 1e-6,
        online_bytes=relus * c["relu_online_bytes"] + macs * c["mac_online_bytes"],
        offline_bytes=relus * c["relu_offline_bytes"],
    )
