"""PI cost model: (ReLUs, MACs, nonlinear layers) -> latency and communication.

The constants live in ``tables/pi_costs.json``, one entry per protocol, each value
with its published source. Profiles fitted to measurements (``reshape measure``,
``scripts/fit_pi_costs.py``) live apart in ``tables/pi_costs_measured.json``: they are
named explicitly (protocol ``spu-cheetah``), never added to the published profiles
that reports list for every result. A user file with the same layout overrides any subset
(``{"delphi": {"relu_online_us": 20}}``) or adds a protocol (all keys given).

    online  latency = ReLUs * relu_online_us  + MACs * mac_online_us  + layers * round_trip_ms
    offline latency = ReLUs * relu_offline_us + MACs * mac_offline_us
    online  bytes   = ReLUs * relu_online_bytes + MACs * mac_online_bytes
    offline bytes   = ReLUs * relu_offline_bytes

plus a measured profile's per-network intercepts (``fixed_online_bytes``/``_us``) and,
for each smooth op (GELU, softmax, ... as ``reshape.count`` names them), its count times
the profile's ``smooth.<op>`` constants (``online_bytes``, ``online_us``,
``offline_bytes``, ``offline_us``). A profile without a constant for an op the network
runs gives no estimate (``CostEstimate.unpriced`` names the ops), never a ReLU-only one.

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
#: Per-network constants (a fitted intercept: what every network pays whatever its counts);
#: optional, 0 where a profile does not give them.
FIXED_KEYS = ("fixed_online_bytes", "fixed_online_us")
#: Per-element constants of one smooth op; an op given with some of them has 0 for the rest.
SMOOTH_KEYS = ("online_bytes", "online_us", "offline_bytes", "offline_us")


@dataclass(frozen=True)
class CostEstimate:
    protocol: str
    online_s: float
    offline_s: float
    online_bytes: float
    offline_bytes: float
    #: smooth ops the network runs that the profile has no cost for: then there is no estimate
    unpriced: tuple[str, ...] = ()

    @property
    def total_s(self) -> float:
        return self.online_s + self.offline_s

    @property
    def total_bytes(self) -> float:
        return self.online_bytes + self.offline_bytes

    def to_dict(self) -> dict[str, Any]:
        if self.unpriced:  # no number rather than a ReLU-only one
            return {"protocol": self.protocol, "estimate": None, "unpriced": list(self.unpriced)}
        fields = {k: v for k, v in asdict(self).items() if k != "unpriced"}
        return {**fields, "total_s": self.total_s, "total_bytes": self.total_bytes}


def load_costs(path: str | os.PathLike[str] | None = None,
               measured: bool = False) -> dict[str, dict[str, float]]:
    """Protocol -> constant -> value: the shipped table (with the measured profiles when
    ``measured``), overridden by the file at ``path``."""
    names = ("pi_costs", "pi_costs_measured") if measured else ("pi_costs",)
    table = {p: {**{k: entry[k]["value"] for k in KEYS},
                 **{k: entry[k]["value"] if k in entry else 0.0 for k in FIXED_KEYS},
                 "smooth": _smooth_constants(entry.get("smooth", {}))}
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
        merged = dict(table.get(protocol, {"smooth": {}, **dict.fromkeys(FIXED_KEYS, 0.0)}))
        for key, value in entries.items():
            if key in ("description",):
                continue
            if key == "smooth":
                merged["smooth"] = {**merged["smooth"], **_user_smooth(path, protocol, value)}
                continue
            if key not in KEYS + FIXED_KEYS:
                raise ReshapeError(f"cost file {path}: unknown constant '{protocol}.{key}'; "
                                   f"known: {', '.join(KEYS + FIXED_KEYS)}, smooth")
            merged[key] = _number(path, f"{protocol}.{key}", value)
        missing = [k for k in KEYS if k not in merged]
        if missing:
            raise ReshapeError(f"cost file {path}: new protocol '{protocol}' lacks {', '.join(missing)}")
        table[protocol] = merged
    return table


def _smooth_constants(entry: dict[str, Any]) -> dict[str, dict[str, float]]:
    """op -> constants from a table's ``smooth`` object (its ``source`` explains what is missing)."""
    return {op: {k: float(c[k]["value"]) if k in c else 0.0 for k in SMOOTH_KEYS}
            for op, c in entry.items() if op != "source"}


def _user_smooth(path: str | os.PathLike[str], protocol: str, value: Any) -> dict[str, dict[str, float]]:
    """A cost file's ``smooth`` object: op -> {constant: number or {"value": number}}, and an
    optional ``source`` (a table's own layout)."""
    if isinstance(value, dict):
        value = {op: c for op, c in value.items() if op != "source"}
    if not isinstance(value, dict) or not all(isinstance(c, dict) for c in value.values()):
        raise ReshapeError(f"cost file {path}: '{protocol}.smooth' must map ops to objects of constants, "
                           f'e.g. {{"gelu": {{"online_bytes": 2000}}}}')
    out = {}
    for op, constants in value.items():
        unknown = [k for k in constants if k not in SMOOTH_KEYS and k != "source"]
        if unknown:
            raise ReshapeError(f"cost file {path}: unknown constant '{protocol}.smooth.{op}.{unknown[0]}'; "
                               f"known: {', '.join(SMOOTH_KEYS)}")
        out[op] = {k: _number(path, f"{protocol}.smooth.{op}.{k}", constants.get(k, 0.0)) for k in SMOOTH_KEYS}
    return out


def _number(path: str | os.PathLike[str], name: str, value: Any) -> float:
    value = value["value"] if isinstance(value, dict) and "value" in value else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ReshapeError(f"cost file {path}: '{name}' must be a number >= 0")
    return float(value)


def check_protocol(protocol: str, costs: dict[str, dict[str, Any]]) -> None:
    """A one-line error for a protocol the table does not have, with close matches."""
    if protocol not in costs:
        import difflib

        close = difflib.get_close_matches(protocol, costs, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ReshapeError(f"unknown protocol '{protocol}'{hint}; known: {', '.join(costs)}")


def estimate(relus: int, macs: int, layers: int, protocol: str = "delphi",
             costs: dict[str, dict[str, Any]] | None = None,
             smooth_ops: dict[str, int] | None = None, network: bool = True) -> CostEstimate:
    """Cost of one inference of a network with these counts under ``protocol``; ``smooth_ops``
    (``Count.smooth_ops``) are priced per op, and an op the profile has no cost for leaves
    the estimate ``unpriced`` rather than a ReLU-only number. ``network=False`` prices a part
    of a network (a stage), which does not pay the per-network ``fixed_*`` constants."""
    costs = costs if costs is not None else load_costs(measured=True)
    check_protocol(protocol, costs)
    c = costs[protocol]
    ops = {op: n for op, n in (smooth_ops or {}).items() if n}
    priced = c.get("smooth", {})
    smooth = {k: sum(n * priced[op][k] for op, n in ops.items() if op in priced) for k in SMOOTH_KEYS}
    fixed = {k: c.get(k, 0.0) if network else 0.0 for k in FIXED_KEYS}
    return CostEstimate(
        protocol=protocol,
        online_s=(relus * c["relu_online_us"] + macs * c["mac_online_us"] + smooth["online_us"]
                  + fixed["fixed_online_us"]) * 1e-6 + layers * c["round_trip_ms"] * 1e-3,
        offline_s=(relus * c["relu_offline_us"] + macs * c["mac_offline_us"] + smooth["offline_us"]) * 1e-6,
        online_bytes=relus * c["relu_online_bytes"] + macs * c["mac_online_bytes"] + smooth["online_bytes"]
        + fixed["fixed_online_bytes"],
        offline_bytes=relus * c["relu_offline_bytes"] + smooth["offline_bytes"],
        unpriced=tuple(sorted(op for op in ops if op not in priced)),
    )
