"""Search spaces: a declarative JSON file turned into a frozen, validated ``SearchSpace``.

A space names a network family (``hybrenet`` or ``resnet``), the timm backbone that
gives its block kind and stage count, the architecture choices a trial samples, the
ReLU optimizer and its knobs, and the proxy-training budget. A ``pipeline`` space instead
names a registered method (``hybrenet_snl``), a params preset, and the params a trial
samples: each trial is that method fit from a teacher, exactly as a frontier point is. Every sampled entry is
``{"choices": [...]}`` or an integer range ``{"low": L, "high": H, "step": S}``.
Bundled spaces live in ``search_spaces/`` (``reshape.search_spaces``); docs/search.md
documents the format. Keys starting with ``_`` are comments.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..errors import ReshapeError

FAMILIES: tuple[str, ...] = ("hybrenet", "resnet", "pipeline")
PIPELINE_KEYS = ("family", "method", "preset", "params")
#: "none": the architecture itself must fit the budget; "senet": train it with all its
#: ReLUs as its own teacher, then SENet fits it to the budget.
RELU_OPTIMIZERS: tuple[str, ...] = ("none", "senet")
#: Keys every space has, and the keys only one family has.
COMMON_KEYS = ("family", "backbone", "depths", "cull", "thin", "relu_optimizer", "senet", "proxy")
FAMILY_KEYS = {"hybrenet": ("multipliers", "base_width"), "resnet": ("width_multiplier",)}
#: SENet's allocations (``reshape.methods.senet``), spelled here so parsing a space loads no torch.
ALLOCATIONS: tuple[str, ...] = ("sensitivity", "uniform")
SENET_KEYS = {"hybrenet": ("expansion", "allocation", "granularity"), "resnet": ("allocation", "granularity")}
PROXY_KEYS = ("epochs", "limit", "test_limit")


@dataclass(frozen=True)
class Param:
    """One sampled parameter: a tuple of choices, or the integers ``low..high`` by ``step``."""

    name: str
    choices: tuple[Any, ...] = ()
    low: int = 0
    high: int = 0
    step: int = 1

    def label_of(self, value: Any, what: str) -> Any:
        """The choice equal to ``value`` as Optuna sees it (lists as JSON text), to enqueue a
        trial; a one-line error when the space has no such choice."""
        wanted = list(value) if isinstance(value, tuple) else value
        if not self.choices:
            if isinstance(wanted, int) and self.low <= wanted <= self.high and (wanted - self.low) % self.step == 0:
                return wanted
            raise ReshapeError(f"the search space cannot express {what}: its {self.name} is {wanted!r}, not in "
                               f"{self.low}..{self.high} by {self.step}; widen the range, or drop the warm start")
        if wanted not in self.choices:
            raise ReshapeError(f"the search space cannot express {what}: its {self.name} is {wanted}, not "
                               f"among the choices {list(self.choices)}; add it to the space, or drop the warm start")
        return json.dumps(wanted, separators=(",", ":")) if isinstance(wanted, list) else wanted

    def values(self) -> tuple[Any, ...]:
        """Every value the parameter may take."""
        return self.choices or tuple(range(self.low, self.high + 1, self.step))

    def sample(self, trial: Any) -> Any:
        """The trial's value; list choices are offered to Optuna as their JSON text."""
        if not self.choices:
            return trial.suggest_int(self.name, self.low, self.high, step=self.step)
        if len(self.choices) == 1:
            return self.choices[0]
        labels = [json.dumps(c, separators=(",", ":")) if isinstance(c, list) else c for c in self.choices]
        return self.choices[labels.index(trial.suggest_categorical(self.name, labels))]


@dataclass(frozen=True)
class WidthGrid:
    """The base widths a HybReNet may take: ``low..high`` by ``step``; the trial's width is the
    largest on this grid that fits its ReLU target, solved in closed form."""

    low: int
    high: int
    step: int


@dataclass(frozen=True)
class SearchSpace:
    name: str
    family: str
    backbone: str
    depths: Param
    cull: Param
    thin: Param
    relu_optimizer: Param
    allocation: Param
    granularity: Param
    epochs: int
    limit: int | None
    test_limit: int | None
    multipliers: Param | None = None
    base_width: WidthGrid | None = None
    expansion: Param | None = None
    width_multiplier: Param | None = None
    #: The validated file as canonical JSON: a resumed study must be run with the same space.
    canonical: str = ""

    def proxy(self, epochs: int | None = None, limit: int | None = None) -> tuple[int, int | None]:
        """A trial's proxy training, epochs and training images: the caller's where given, else the space's."""
        return epochs or self.epochs, self.limit if limit is None else limit


def bundled() -> list[str]:
    """Names of the spaces shipped in ``reshape.search_spaces``."""
    from importlib import resources

    return sorted(p.name[:-5] for p in resources.files("reshape.search_spaces").iterdir()
                  if p.name.endswith(".json"))


def load_space(name_or_path: str) -> SearchSpace | PipelineSpace:
    """A bundled space by name (``hybrenet``) or a user's JSON file by path."""
    from importlib import resources

    from ..io import read_json

    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        return parse(read_json(path, "search space"), str(path))
    if name_or_path not in bundled():
        raise ReshapeError(f"unknown search space '{name_or_path}'; give a JSON file or one of: "
                           f"{', '.join(bundled())}")
    text = resources.files("reshape.search_spaces").joinpath(f"{name_or_path}.json").read_text("utf-8")
    return parse(json.loads(text), name_or_path)


@dataclass(frozen=True)
class PipelineSpace:
    """A registered method's params to search: every trial fits the teacher with ``method``
    (its ``preset``, then the sampled ``params``), as a frontier point does."""

    name: str
    method: str
    preset: str | None
    params: tuple[Param, ...]
    canonical: str = ""
    family: str = "pipeline"


def parse(data: Any, name: str) -> SearchSpace | PipelineSpace:
    """Validate ``data`` (a decoded space file); errors name the file and the bad key."""
    from ..deepreshape import backbone_spec
    from ..spec import GRANULARITIES

    def fail(key: str, problem: str) -> ReshapeError:
        return ReshapeError(f"search space {name}: '{key}' {problem}")

    data = _object(data, "", fail)
    family = data.get("family")
    if family not in FAMILIES:
        raise fail("family", f"must be one of {', '.join(FAMILIES)}, got {family!r}")
    if family == "pipeline":
        return _pipeline(data, name, fail)
    _keys(data, "", (*COMMON_KEYS, *FAMILY_KEYS[family]), fail)
    if not isinstance(data["backbone"], str):
        raise fail("backbone", "must be a timm ResNet name such as resnet18")
    try:
        stages = len(backbone_spec(data["backbone"]).stages)
    except ReshapeError as exc:
        raise fail("backbone", f"is not usable: {exc.template}") from None
    senet, proxy = _object(data["senet"], "senet", fail), _object(data["proxy"], "proxy", fail)
    _keys(senet, "senet.", SENET_KEYS[family], fail)
    _keys(proxy, "proxy.", PROXY_KEYS, fail)

    def param(obj: dict[str, Any], key: str, prefix: str, ok: Callable[[Any], bool], rule: str) -> Param:
        return _param(obj[key], prefix + key, ok, rule, fail)

    stage_list = lambda v, n: isinstance(v, list) and len(v) == n and all(_int(x, 1) for x in v)  # noqa: E731
    fields: dict[str, Any] = dict(
        depths=param(data, "depths", "", lambda v: stage_list(v, stages),
                     f"a list of {stages} positive block counts"),
        cull=param(data, "cull", "", lambda v: isinstance(v, list) and all(_int(s, 1) and s <= stages for s in v)
                   and len(set(v)) == len(v), f"a list of distinct stage numbers in 1..{stages}"),
        thin=param(data, "thin", "", lambda v: isinstance(v, bool), "true or false"),
        relu_optimizer=param(data, "relu_optimizer", "", lambda v: v in RELU_OPTIMIZERS,
                             f"one of {', '.join(RELU_OPTIMIZERS)}"),
        allocation=param(senet, "allocation", "senet.", lambda v: v in ALLOCATIONS,
                         f"one of {', '.join(ALLOCATIONS)}"),
        granularity=param(senet, "granularity", "senet.", lambda v: v in GRANULARITIES,
                          f"one of {', '.join(GRANULARITIES)}"),
    )
    if family == "hybrenet":
        fields["multipliers"] = param(data, "multipliers", "", lambda v: stage_list(v, stages - 1),
                                      f"a list of {stages - 1} positive stage multipliers")
        fields["expansion"] = param(senet, "expansion", "senet.", lambda v: _positive_number(v) and v >= 1,
                                    "a number >= 1 (the teacher has at least the budget's ReLUs)")
        fields["base_width"] = WidthGrid(*_range(_object(data["base_width"], "base_width", fail),
                                                 "base_width", fail))
    else:
        fields["width_multiplier"] = param(data, "width_multiplier", "", _positive_number, "a number > 0")
    for key in PROXY_KEYS:
        if key not in proxy:
            raise fail(f"proxy.{key}", "is missing")
    if not _int(proxy["epochs"], 1):
        raise fail("proxy.epochs", f"must be a positive integer, got {proxy['epochs']!r}")
    for key in ("limit", "test_limit"):
        if proxy[key] is not None and not _int(proxy[key], 1):
            raise fail(f"proxy.{key}", f"must be a positive number of images or null, got {proxy[key]!r}")
    return SearchSpace(name=name, family=family, backbone=data["backbone"], epochs=proxy["epochs"],
                       limit=proxy["limit"], test_limit=proxy["test_limit"],
                       canonical=json.dumps(data, sort_keys=True), **fields)


def _pipeline(data: dict[str, Any], name: str, fail: Callable[[str, str], ReshapeError]) -> PipelineSpace:
    """A pipeline space: the method registered, the preset its, every sampled param one of its
    params and every choice a value it accepts (checked by building the params)."""
    from ..methods import get_method, list_methods

    _keys(data, "", PIPELINE_KEYS, fail)
    if data["method"] not in list_methods():
        raise fail("method", f"must be a registered method ({', '.join(list_methods())}), got {data['method']!r}")
    method = get_method(data["method"])
    preset = data["preset"]
    if preset is not None and preset not in method.presets:
        raise fail("preset", f"must be null or one of {', '.join(method.presets)}, got {preset!r}")
    params = _object(data["params"], "params", fail)
    if not params:
        raise fail("params", "is empty; name at least one param to search")

    def accepted(key: str) -> Callable[[Any], bool]:
        def ok(value: Any) -> bool:
            try:
                method.params(preset, **{key: value})
            except (ReshapeError, TypeError, ValueError):
                return False
            return True
        return ok

    fields = tuple(replace(_param(params[key], f"params.{key}", accepted(key),
                                  f"a value {data['method']} accepts as {key}", fail), name=key) for key in params)
    return PipelineSpace(name=name, method=data["method"], preset=preset, params=fields,
                         canonical=json.dumps(data, sort_keys=True))


# -- validation helpers --------------------------------------------------------------------------
def _int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _object(value: Any, key: str, fail: Callable[[str, str], ReshapeError]) -> dict[str, Any]:
    """``value`` as a dict without its comment keys (``_...``)."""
    if not isinstance(value, dict):
        raise fail(key or "(file)", f"must be a JSON object, got {type(value).__name__}")
    return {k: v for k, v in value.items() if not k.startswith("_")}


def _keys(obj: dict[str, Any], prefix: str, allowed: tuple[str, ...],
          fail: Callable[[str, str], ReshapeError]) -> None:
    """Every key known and every key present."""
    for key in obj:
        if key not in allowed:
            raise fail(prefix + key, f"is not a known key here; allowed: {', '.join(allowed)}")
    for key in allowed:
        if key not in obj:
            raise fail(prefix + key, "is missing")


def _range(obj: dict[str, Any], key: str, fail: Callable[[str, str], ReshapeError],
           allowed: str = "low, high, step") -> tuple[int, int, int]:
    """``low``, ``high`` and ``step`` (default 1) of an integer range, checked."""
    for k in obj:
        if k not in ("low", "high", "step"):
            raise fail(f"{key}.{k}", f"is not a known key here; allowed: {allowed}")
    low, high, step = obj.get("low"), obj.get("high"), obj.get("step", 1)
    for part, value in (("low", low), ("high", high), ("step", step)):
        if not _int(value, 1):
            raise fail(f"{key}.{part}", f"must be a positive integer, got {value!r}")
    if low > high:
        raise fail(key, f"is an empty range: low {low} > high {high}")
    return low, high, step


def _param(spec: Any, key: str, ok: Callable[[Any], bool], rule: str,
           fail: Callable[[str, str], ReshapeError]) -> Param:
    spec = _object(spec, key, fail)
    if "choices" in spec:
        _keys(spec, f"{key}.", ("choices",), fail)
        choices = spec["choices"]
        if not isinstance(choices, list):
            raise fail(f"{key}.choices", f"must be a list, got {type(choices).__name__}")
        if not choices:
            raise fail(f"{key}.choices", "is empty; give at least one choice")
        for i, choice in enumerate(choices):
            if not ok(choice):
                raise fail(f"{key}.choices[{i}]", f"must be {rule}, got {choice!r}")
        return Param(key, tuple(choices))
    low, high, step = _range(spec, key, fail, "choices, or low, high, step")
    if not (ok(low) and ok(high)):
        raise fail(key, f"values must be {rule}; an integer range fits only integer parameters")
    return Param(key, (), low, high, step)
