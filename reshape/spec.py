"""Architecture specs: a network described as data.

A spec is a tree of frozen dataclasses that serializes to versioned JSON and back
without loss. It describes a ResNet-family network (timm's BasicBlock or Bottleneck,
or the pre-activation block of wide ResNets), its stem, its stages, its input and head,
and the state of every ReLU layer that differs from "kept". Weights (and ReLU masks)
live beside it, never in it.

Conventions (timm's): stage 1 has stride 1, every later stage stride 2; a stage's
``width`` is timm's ``channels`` (BasicBlock and pre-activation output width;
Bottleneck inner width, output ``4 * width``). ReLU layers are named by their module
path in the built model: ``act1`` for the stem (timm blocks), ``layer{s}.{b}.act{k}``
inside blocks, ``final_act`` for a pre-activation network's last BN-ReLU (its stem has
no ReLU).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

from .errors import SpecError

SCHEMA_VERSION = 1

BlockKind = Literal["basic", "bottleneck", "preact"]
StemKind = Literal["cifar", "imagenet"]
ReluState = Literal["kept", "removed", "masked"]
Granularity = Literal["neuron", "channel"]

BLOCK_KINDS: tuple[str, ...] = ("basic", "bottleneck", "preact")
STEM_KINDS: tuple[str, ...] = ("cifar", "imagenet")
RELU_STATES: tuple[str, ...] = ("kept", "removed", "masked")
GRANULARITIES: tuple[str, ...] = ("neuron", "channel")
#: Stages a block kind requires: timm's ResNet, which builds basic and bottleneck specs,
#: runs layer1..layer4. Pre-activation networks (wide ResNets) take any number.
FIXED_STAGES = {"basic": 4, "bottleneck": 4}
#: ReLU layers per block: BasicBlock has act1 (inner) and act2 (after the add); a
#: pre-activation block has act1 (on its input) and act2 (between its convs).
ACTS_PER_BLOCK = {"basic": 2, "bottleneck": 3, "preact": 2}
#: Output channels per unit of stage width.
EXPANSION = {"basic": 1, "bottleneck": 4, "preact": 1}
#: Bounds on a spec's sizes, far beyond any real network, checked before anything is built:
#: a width of 10**30 overflows torch's sizes and a depth of 100,000 builds for minutes
#: before failing deep in Python. Within them, ``require_memory`` judges the machine.
LIMITS = {"width": 1 << 16, "depth": 1 << 12, "stages": 64, "stride": 64, "num_classes": 1 << 20,
          "in_chans": 1 << 12, "input_size": 1 << 14}
#: The stem ReLU of timm-block networks; pre-activation networks have none.
STEM_ACT = "act1"
#: The last BN-ReLU of a pre-activation network, after its last stage.
FINAL_ACT = "final_act"


@dataclass(frozen=True)
class Stem:
    """The stem: ``cifar`` = 3x3 conv, no max-pool; ``imagenet`` = 7x7 conv + 3x3/2 max-pool."""

    kind: StemKind = "cifar"
    width: int = 64
    stride: int = 1

    @property
    def kernel(self) -> int:
        return 3 if self.kind == "cifar" else 7

    @property
    def pool(self) -> bool:
        return self.kind == "imagenet"


@dataclass(frozen=True)
class Stage:
    width: int
    depth: int


@dataclass(frozen=True)
class ReluLayer:
    """State of one ReLU layer; ``kept`` (a count) and ``granularity`` only when masked."""

    name: str
    state: ReluState
    kept: int | None = None
    granularity: Granularity | None = None


@dataclass(frozen=True)
class ArchSpec:
    block: BlockKind
    stages: tuple[Stage, ...]
    stem: Stem = field(default_factory=Stem)
    num_classes: int = 10
    in_chans: int = 3
    input_size: int = 32
    relus: tuple[ReluLayer, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        validate(self)

    # -- derived facts, no torch needed -------------------------------------------------
    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(s.width for s in self.stages)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One input image: (channels, height, width)."""
        return (self.in_chans, self.input_size, self.input_size)

    @property
    def preact(self) -> bool:
        """Pre-activation blocks: no stem ReLU, a final BN-ReLU after the last stage."""
        return self.block == "preact"

    def relu_names(self) -> list[str]:
        """Every ReLU layer of the built network, in forward order."""
        acts = ACTS_PER_BLOCK[self.block]
        names = [] if self.preact else [STEM_ACT]
        for s, stage in enumerate(self.stages, start=1):
            for b in range(stage.depth):
                names.extend(f"layer{s}.{b}.act{k}" for k in range(1, acts + 1))
        return names + [FINAL_ACT] if self.preact else names

    def feeding_convs(self) -> dict[str, str]:
        """The conv whose output (through its BN) each ReLU layer activates, by module name.

        timm blocks: ``act<k>`` <- ``conv<k>`` (the stem's ``act1`` <- ``conv1``). Pre-activation:
        ``act2`` <- the block's ``conv1``; ``act1`` and ``final_act`` <- the conv before them on the
        main path (the previous block's ``conv2``, or the stem ``conv1``).
        """
        if not self.preact:
            return {n: n.replace("act", "conv") for n in self.relu_names()}
        out, previous = {}, "conv1"
        for s, stage in enumerate(self.stages, start=1):
            for b in range(stage.depth):
                out[f"layer{s}.{b}.act1"] = previous
                out[f"layer{s}.{b}.act2"] = f"layer{s}.{b}.conv1"
                previous = f"layer{s}.{b}.conv2"
        return {**out, FINAL_ACT: previous}

    def relu_state(self, name: str) -> ReluLayer:
        for layer in self.relus:
            if layer.name == name:
                return layer
        return ReluLayer(name, "kept")

    def with_relus(self, layers: Iterator[ReluLayer] | list[ReluLayer]) -> "ArchSpec":
        """A copy whose ReLU states are updated by ``layers`` (later entries win)."""
        merged = {layer.name: layer for layer in self.relus}
        merged.update({layer.name: layer for layer in layers})
        order = {n: i for i, n in enumerate(self.relu_names())}
        kept_out = [l for l in merged.values() if l.state != "kept"]
        return dataclasses.replace(
            self, relus=tuple(sorted(kept_out, key=lambda l: order.get(l.name, len(order))))
        )

    def replace(self, **changes: Any) -> "ArchSpec":
        return dataclasses.replace(self, **changes)

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {"schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}
        d["stages"] = list(d["stages"])
        d["relus"] = [
            {k: v for k, v in r.items() if v is not None} for r in d["relus"]
        ]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> "ArchSpec":
        if not isinstance(data, dict):
            raise SpecError("spec", f"must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version is None:
            raise SpecError("spec.schema_version", "missing; this tool writes schema_version 1")
        if version != SCHEMA_VERSION:
            raise SpecError(
                "spec.schema_version",
                f"unknown version {version!r}; this tool reads version {SCHEMA_VERSION}",
            )
        body = {k: v for k, v in data.items() if k != "schema_version"}
        _check_keys("spec", body, cls)
        if "block" not in body or "stages" not in body:
            missing = "block" if "block" not in body else "stages"
            raise SpecError(f"spec.{missing}", "missing (required)")
        stages = _list("spec.stages", body["stages"])
        relus = _list("spec.relus", body.get("relus", []))
        stem = body.get("stem", {})
        if not isinstance(stem, dict):
            raise SpecError("spec.stem", "must be an object")
        _check_keys("spec.stem", stem, Stem)
        return cls(
            block=body["block"],
            stem=Stem(**stem),
            stages=tuple(_make(f"spec.stages[{i}]", Stage, s) for i, s in enumerate(stages)),
            relus=tuple(_make(f"spec.relus[{i}]", ReluLayer, r) for i, r in enumerate(relus)),
            **{k: body[k] for k in ("num_classes", "in_chans", "input_size", "name") if k in body},
        )

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        from .io import parse_json

        return cls.from_dict(parse_json(text, "spec"))


def load_spec(path: str | os.PathLike[str]) -> ArchSpec:
    from .io import read_json

    return ArchSpec.from_dict(read_json(path, "spec file"))


def save_spec(spec: ArchSpec, path: str | os.PathLike[str]) -> None:
    from .io import write_text

    write_text(path, spec.to_json())


# -- validation ------------------------------------------------------------------------------
def _check_keys(where: str, data: dict[str, Any], cls: type) -> None:
    allowed = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in allowed:
            raise SpecError(f"{where}.{key}", f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _list(where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise SpecError(where, f"must be a list, got {type(value).__name__}")
    return value


def _make(where: str, cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise SpecError(where, "must be an object")
    _check_keys(where, data, cls)
    try:
        return cls(**data)
    except TypeError as exc:  # a required field is missing
        raise SpecError(where, str(exc).split(".__init__() ")[-1]) from None


def _positive_int(where: str, value: Any, limit: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(where, f"must be a positive integer, got {_short(value)}")
    if limit is not None and value > limit:
        raise SpecError(where, f"must be at most {limit:,}, got {_short(value)}; a network this large "
                               "cannot be built")


def _short(value: Any) -> str:
    """``repr(value)``, cut short (a width of 10**300 is not printed in full)."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} digits)" if isinstance(value, int) \
        else text[:20] + "..."


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(where, f"must be one of {', '.join(choices)}, got {value!r}")


def _relu_form(spec: ArchSpec) -> str:
    inner = f"layer<s>.<b>.act<k> (k = 1..{ACTS_PER_BLOCK[spec.block]})"
    return f"{inner} and {FINAL_ACT}" if spec.preact else f"{STEM_ACT} and {inner}"


def validate(spec: ArchSpec) -> None:
    """Raise ``SpecError`` naming the first impossible field of ``spec``."""
    _choice("spec.block", spec.block, BLOCK_KINDS)
    _choice("spec.stem.kind", spec.stem.kind, STEM_KINDS)
    _positive_int("spec.stem.width", spec.stem.width, LIMITS["width"])
    _positive_int("spec.stem.stride", spec.stem.stride, LIMITS["stride"])
    fixed = FIXED_STAGES.get(spec.block)
    if fixed is not None and len(spec.stages) != fixed:
        raise SpecError("spec.stages", f"block '{spec.block}' needs exactly {fixed} stages (timm's ResNet "
                                       f"layout), got {len(spec.stages)}; block 'preact' takes any number")
    if not spec.stages:
        raise SpecError("spec.stages", "needs at least one stage")
    if len(spec.stages) > LIMITS["stages"]:
        raise SpecError("spec.stages", f"at most {LIMITS['stages']} stages, got {len(spec.stages)}")
    for i, stage in enumerate(spec.stages):
        _positive_int(f"spec.stages[{i}].width", stage.width, LIMITS["width"])
        _positive_int(f"spec.stages[{i}].depth", stage.depth, LIMITS["depth"])
    for name in ("num_classes", "in_chans", "input_size"):
        _positive_int(f"spec.{name}", getattr(spec, name), LIMITS[name])
    if not isinstance(spec.name, str):
        raise SpecError("spec.name", "must be a string")
    # The input must survive every downsampling: stem stride (and pool), then /2 per stage.
    reduction = spec.stem.stride * (2 if spec.stem.pool else 1) * 2 ** (len(spec.stages) - 1)
    if spec.input_size < reduction:
        raise SpecError(
            "spec.input_size",
            f"{spec.input_size} is smaller than the network's total stride {reduction}",
        )
    names = spec.relu_names()
    known = set(names)
    seen: set[str] = set()
    for i, layer in enumerate(spec.relus):
        where = f"spec.relus[{i}]"
        if layer.name not in known:
            raise SpecError(
                f"{where}.name",
                f"no ReLU layer '{layer.name}' in this network (depths {list(spec.depths)}); "
                f"layers are {_relu_form(spec)}",
            )
        if layer.name in seen:
            raise SpecError(f"{where}.name", f"'{layer.name}' is listed twice")
        seen.add(layer.name)
        _choice(f"{where}.state", layer.state, RELU_STATES)
        if layer.state == "masked":
            if layer.kept is None or isinstance(layer.kept, bool) or not isinstance(layer.kept, int) or layer.kept < 0:
                raise SpecError(f"{where}.kept", f"a masked layer needs a kept count >= 0, got {layer.kept!r}")
            _choice(f"{where}.granularity", layer.granularity, GRANULARITIES)
        elif layer.kept is not None or layer.granularity is not None:
            raise SpecError(f"{where}.kept", f"only masked layers carry kept/granularity (state is {layer.state})")
