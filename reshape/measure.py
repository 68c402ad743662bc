"""Measured PI cost: run a network under SecretFlow SPU (two parties) and record what it cost.

The cost model (``reshape.cost``) estimates from ReLU and MAC counts with published
constants; this module measures. SPU needs Python 3.11, numpy < 2 and jax 0.4.34, so it
lives in its own environment (``make pi-backend`` -> ``.venv-pi``) and runs as a
subprocess: this module turns a run (or a bare spec, with random weights) into a plan of
plain ops with BN folded into the convolutions (``plan``), hands it to
``reshape/pi_backend/spu_run.py`` with the tensors as safetensors, and checks the
secure result against the PyTorch forward. The main package never imports jax.

A measurement is written as ``pi_<protocol>_<field>.json`` in the run directory (or
``out``): the counts, the measured bytes/seconds (online and one-time setup apart, per
layer kind), the published-constant estimate and the check. ``fit_costs`` fits a cost profile
(``reshape.cost`` constants) to several of them by least squares.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import fx, nn

from .cost import estimate, load_costs
from .errors import ReshapeError
from .io import read_json, write_json
from .layers import MaskedReLU
from .spec import ArchSpec

PROTOCOLS = ("cheetah", "semi2k")
FIELDS = ("fm64", "fm128")
BACKEND_ENV = "RESHAPE_PI_PYTHON"
INSTALL_HINT = "make pi-backend"
SCRIPT = Path(__file__).resolve().parent / "pi_backend" / "spu_run.py"
#: The backend ``make pi-backend`` makes, next to the installed package (a source checkout's root).
INSTALLED_BACKEND = Path(__file__).resolve().parents[1] / ".venv-pi" / "bin" / "python"
#: the published profile each protocol's measurement is compared with
PUBLISHED = {"cheetah": "cheetah", "semi2k": "cheetah"}


def result_name(protocol: str, field: str = "fm64", weights: str = "secret") -> str:
    """File name of a measurement in a run directory (what reports look for)."""
    return f"pi_{protocol}_{field}{'' if weights == 'secret' else '_' + weights}.json"


def backend_python() -> Path:
    """The backend environment's Python, or a one-line error saying how to install it.

    Only ``RESHAPE_PI_PYTHON`` or the ``.venv-pi`` beside the installed package (a source
    checkout's, made by ``make pi-backend``): never one in the working directory, which
    would run the code of whatever folder a measurement is started in.
    """
    override = os.environ.get(BACKEND_ENV)
    python = Path(override) if override else INSTALLED_BACKEND
    if python.is_file():
        return python
    if override:
        raise ReshapeError(f"{BACKEND_ENV}={override} is not a file; point it at the Python of the backend "
                           f"environment (`{INSTALL_HINT}` makes one: .venv-pi/bin/python)")
    raise ReshapeError(f"the SPU backend is not installed: run `{INSTALL_HINT}` in the repository "
                       f"(creates .venv-pi), or set {BACKEND_ENV} to a Python 3.11 with spu==0.9.5")


# ---------------------------------------------------------------- the plan (torch side)

@dataclass
class Plan:
    """Ops over named values (the backend's vocabulary), the tensors they use, the reference."""

    ops: list[dict[str, Any]]
    tensors: dict[str, torch.Tensor]
    output: str
    image: torch.Tensor
    reference: torch.Tensor

    def to_json(self) -> dict[str, Any]:
        return {"format": "reshape.pi-plan", "version": 1, "ops": self.ops, "output": self.output}


def plan(model: nn.Module, spec: ArchSpec, seed: int = 0) -> Plan:
    """The network as backend ops (BN folded into convs), one seeded input image, the plaintext logits.

    Spec-built ResNets, and the graphs the shallow-block passes rewrite them into
    (``_graph_plan``); a block with extras (SE, anti-aliasing, drop-block) is refused with a
    one-line error.
    """
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    image = torch.randn((1, *spec.input_shape), generator=torch.Generator().manual_seed(seed))
    if isinstance(model, fx.GraphModule):
        return _graph_plan(model.eval(), image)
    if not isinstance(model, ResNet):
        raise ReshapeError(f"reshape measure runs ResNet-family specs and their rewritten graphs only; "
                           f"this network is a {type(model).__name__}")
    model = model.eval()
    shapes: dict[nn.Module, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda mod, _, out: shapes.__setitem__(mod, tuple(out.shape[1:])))
             for m in model.modules() if isinstance(m, MaskedReLU)]
    # the head's input: its H x W is what the global pool averages over
    hooks.append(model.global_pool.register_forward_hook(
        lambda mod, inp, _: shapes.__setitem__(mod, tuple(inp[0].shape[1:]))))
    with torch.no_grad():
        reference = model(image)[0]
    for h in hooks:
        h.remove()
    b = _Builder(shapes)
    x = b.conv(model.conv1, model.bn1, "input", "conv1")
    x = b.act(model.act1, x, "act1")
    if isinstance(model.maxpool, nn.MaxPool2d):
        x = b.maxpool(model.maxpool, x)
    elif not isinstance(model.maxpool, nn.Identity):
        raise _unsupported("stem pooling", model.maxpool)
    for s in range(1, len(spec.stages) + 1):
        for i, block in enumerate(getattr(model, f"layer{s}")):
            name = f"layer{s}.{i}"
            if isinstance(block, (BasicBlock, Bottleneck)):
                x = b.block(block, x, name, bottleneck=isinstance(block, Bottleneck))
            else:
                raise _unsupported(name, block)
    if getattr(model.global_pool, "pool_type", "avg") != "avg":
        raise _unsupported("the head", model.global_pool)
    b.head(model.fc, math.prod(b.shapes[model.global_pool][1:]), x)
    return Plan(b.ops, b.tensors, "logits", image, reference)


def _graph_plan(gm: fx.GraphModule, image: torch.Tensor) -> Plan:
    """A rewritten ResNet (merged shallow blocks) as backend ops, node by node: a conv and
    the batch norm it alone feeds fold into one conv; a merged conv keeps its own bias;
    identities pass their input on; the pool, flatten and linear at the end are the head."""
    import operator

    from torch.fx.passes.shape_prop import ShapeProp

    with torch.no_grad():
        reference = gm(image)[0]
        ShapeProp(gm).propagate(image)
    shape = {n.name: tuple(n.meta["tensor_meta"].shape[1:]) for n in gm.graph.nodes if "tensor_meta" in n.meta}
    modules = {n.name: gm.get_submodule(n.target) for n in gm.graph.nodes if n.op == "call_module"}
    b = _Builder({modules[n]: s for n, s in shape.items() if n in modules})
    value: dict[str, str] = {}  # fx node -> the plan value holding it
    pooled: int | None = None  # H x W of the global pool's input, once the head starts
    for n in gm.graph.nodes:
        m = modules.get(n.name)
        args = [value.get(a.name) for a in n.args if isinstance(a, fx.Node)]
        if n.op == "placeholder":
            value[n.name] = "input"
        elif n.op == "output":
            if value.get(n.args[0].name) != "logits":
                raise ReshapeError("reshape measure: the rewritten graph does not end in its classifier")
        elif isinstance(m, nn.Conv2d):
            users = list(n.users)
            bn = modules.get(users[0].name) if len(users) == 1 else None
            value[n.name] = b.conv(m, bn if isinstance(bn, nn.BatchNorm2d) else None, args[0], n.name)
        elif isinstance(m, nn.BatchNorm2d) and isinstance(modules.get(n.args[0].name), nn.Conv2d) \
                and len(n.args[0].users) == 1:
            value[n.name] = args[0]  # folded into its conv
        elif isinstance(m, (nn.ReLU, MaskedReLU)):
            value[n.name] = b.act(m, args[0], n.name)
        elif isinstance(m, (nn.Identity, nn.Dropout, nn.Flatten)):
            value[n.name] = args[0]
        elif isinstance(m, nn.MaxPool2d):
            value[n.name] = b.maxpool(m, args[0])
        elif isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
            pooled, value[n.name] = math.prod(shape[n.args[0].name][1:]), args[0]
        elif isinstance(m, nn.Linear) and pooled is not None:
            value[n.name] = b.head(m, pooled, args[0])
        elif n.op == "call_function" and n.target in (operator.add, torch.add) and len(args) == 2:
            b.ops.append({"op": "add", "in": args, "out": n.name})
            value[n.name] = n.name
        else:
            what = type(m).__name__ if m is not None else getattr(n.target, "__name__", str(n.target))
            raise ReshapeError(f"reshape measure cannot run node {n.name} ({what}) of the rewritten graph: "
                               "only convs, batch norms, ReLUs, max-pools, additions and a pooled classifier")
    return Plan(b.ops, b.tensors, "logits", image, reference)



def _unsupported(where: str, module: nn.Module) -> ReshapeError:
    return ReshapeError(f"reshape measure cannot run {where}: {type(module).__name__} is not part "
                        "of a plain ResNet-family spec")


class _Builder:
    """Appends ops and folded tensors; names values after the modules that make them."""

    def __init__(self, shapes: Mapping[nn.Module, tuple[int, ...]]) -> None:
        self.ops: list[dict[str, Any]] = []
        self.tensors: dict[str, torch.Tensor] = {}
        self.shapes = shapes

    def conv(self, conv: nn.Module, bn: nn.Module | None, x: str, name: str) -> str:
        """A conv with the batch norm after it folded in (none: a merged conv, its own bias)."""
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, (nn.BatchNorm2d, type(None))) \
                or conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros" \
                or len(set(conv.stride)) != 1 or len(set(conv.padding)) != 1:
            raise _unsupported(name, conv)
        ones, zeros = torch.ones(conv.out_channels), torch.zeros(conv.out_channels)
        scale = ones if bn is None else bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = zeros if bn is None else bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        self.tensors[f"w.{name}"] = (conv.weight * scale.view(-1, 1, 1, 1)).detach()
        self.tensors[f"w.{name}.bias"] = bias.detach()
        self.ops.append({"op": "conv", "in": x, "out": name, "weight": name, "bias": f"{name}.bias",
                         "stride": conv.stride[0], "padding": conv.padding[0]})
        return name

    def act(self, module: nn.Module, x: str, name: str) -> str:
        if isinstance(module, nn.Identity):
            return x
        op: dict[str, Any] = {"op": "relu", "in": x, "out": name}
        if isinstance(module, MaskedReLU):
            shape = self.shapes[module]
            mask = module.mask if module.granularity == "neuron" else \
                module.mask.view(-1, *([1] * (len(shape) - 1))).expand(shape)
            self.tensors[f"keep.{name}"] = mask.reshape(-1).nonzero().view(-1).to(torch.int64)
            op["keep"] = name
        elif not isinstance(module, nn.ReLU):
            raise _unsupported(name, module)
        self.ops.append(op)
        return name

    def maxpool(self, pool: nn.MaxPool2d, x: str) -> str:
        k, s, p = (v if isinstance(v, int) else v[0] for v in (pool.kernel_size, pool.stride, pool.padding))
        self.ops.append({"op": "maxpool", "in": x, "out": "maxpool", "kernel": k, "stride": s, "padding": p})
        return "maxpool"

    def block(self, block: nn.Module, x: str, name: str, bottleneck: bool) -> str:
        for extra in ("drop_block", "aa", "se", "drop_path"):
            module = getattr(block, extra, None)
            if module is not None and not isinstance(module, nn.Identity):
                raise _unsupported(f"{name}.{extra}", module)
        convs = 3 if bottleneck else 2
        y = x
        for k in range(1, convs + 1):
            y = self.conv(getattr(block, f"conv{k}"), getattr(block, f"bn{k}"), y, f"{name}.conv{k}")
            if k < convs:
                y = self.act(getattr(block, f"act{k}"), y, f"{name}.act{k}")
        shortcut = x
        if block.downsample is not None:
            down = list(block.downsample)
            if len(down) != 2:
                raise _unsupported(f"{name}.downsample", block.downsample)
            shortcut = self.conv(down[0], down[1], x, f"{name}.downsample")
        self.ops.append({"op": "add", "in": [y, shortcut], "out": f"{name}.add"})
        return self.act(getattr(block, f"act{convs}"), f"{name}.add", f"{name}.act{convs}")

    def head(self, fc: nn.Module, spatial: int, x: str) -> str:
        """Global average pooling over ``spatial`` positions and the classifier ``fc``."""
        if not isinstance(fc, nn.Linear):
            raise _unsupported("the head", fc)
        # mean = sum / HW: the 1/HW moves into the weights, so no multiply by a constant remains
        self.tensors["w.fc"] = (fc.weight / spatial).detach()
        self.tensors["w.fc.bias"] = fc.bias.detach()
        self.ops.append({"op": "head", "in": x, "out": "logits", "weight": "fc", "bias": "fc.bias"})
        return "logits"


# ---------------------------------------------------------------- running the backend

def load(source: str | os.PathLike[str], seed: int = 0) -> tuple[ArchSpec, nn.Module, bool]:
    """(spec, model, trained): a run directory with its weights, or a spec file with seeded random ones."""
    from .models import build
    from .runs import is_run_dir, load_run
    from .spec import load_spec

    path = Path(source)
    if path.is_dir():
        if not is_run_dir(path):
            raise ReshapeError(f"{path} is not a run directory (no spec.json)")
        spec, model = load_run(path)
        return spec, model, True
    if not path.is_file():
        raise ReshapeError(f"{path}: no such run directory or spec file")
    spec = load_spec(path)
    torch.manual_seed(seed)
    return spec, build(spec), False


def measure(source: str | os.PathLike[str], protocol: str = "cheetah", field: str = "fm64",
            out: str | os.PathLike[str] | None = None, link: str = "auto", weights: str = "secret",
            progress: Callable[[str], None] | None = None, python: Path | None = None) -> dict[str, Any]:
    """Measure one inference of ``source`` under SPU; write and return the result record.

    ``link``: ``brpc`` (two processes over 127.0.0.1), ``mem`` (two parties in one
    process) or ``auto`` (brpc, falling back to mem if the sockets fail).
    """
    from .accounting import count

    if protocol not in PROTOCOLS:
        raise ReshapeError(f"unknown protocol '{protocol}'; choose one of: {', '.join(PROTOCOLS)}")
    python = python or backend_python()
    say = progress or (lambda _: None)
    spec, model, trained = load(source)
    target = Path(out) if out else (Path(source) if Path(source).is_dir() else Path(source).parent)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReshapeError(f"cannot write the measurement to {target}: {exc.strerror}; pass another $out",
                           param="out") from None
    say("folding BN and tracing the plaintext forward")
    p = plan(model, spec)
    counted = count(model, spec.input_shape)
    raw = _execute(p, protocol, field, link, weights, python, say)
    record = _record(source, spec, trained, counted, p, raw)
    write_json(target / result_name(protocol, field, weights), record)
    record["file"] = str(target / result_name(protocol, field, weights))
    return record


def machine() -> str:
    """Where a measurement ran, as records and profile sources name it."""
    return f"{platform.machine()} {os.cpu_count()} cpus, {platform.system()}"


def _execute(p: Plan, protocol: str, field: str, link: str, weights: str, python: Path,
             say: Callable[[str], None]) -> dict[str, Any]:
    """Run a plan in the backend (brpc, falling back to in-process parties under ``auto``)
    and return its raw result."""
    with tempfile.TemporaryDirectory(prefix="reshape-pi-") as tmp:
        from safetensors.torch import save_file

        plan_file, tensors_file, result_file = (Path(tmp) / n for n in ("plan.json", "t.safetensors", "r.json"))
        plan_file.write_text(json.dumps(p.to_json()))
        save_file({**{k: v.contiguous() for k, v in p.tensors.items()}, "image": p.image}, str(tensors_file))
        links = ["brpc", "mem"] if link == "auto" else [link]
        for i, attempt in enumerate(links):
            try:
                _run_backend(python, [str(plan_file), str(tensors_file), "--protocol", protocol,
                                      "--field", field, "--link", attempt, "--weights", weights,
                                      "--out", str(result_file)], say)
                break
            except ReshapeError as exc:
                if i + 1 == len(links):
                    raise
                say(f"{attempt} link failed ({exc}); retrying with in-process parties")
        return read_json(result_file, "backend result")


#: Smooth ops the backend can price (``reshape count``'s names), with the torch reference and
#: the input range each is measured on (a reciprocal or rsqrt needs positive values).
SMOOTH = {
    "gelu": (torch.nn.functional.gelu, (-3.0, 3.0)), "silu": (torch.nn.functional.silu, (-3.0, 3.0)),
    "sigmoid": (torch.sigmoid, (-3.0, 3.0)), "tanh": (torch.tanh, (-3.0, 3.0)), "exp": (torch.exp, (-3.0, 3.0)),
    "hardswish": (torch.nn.functional.hardswish, (-4.0, 4.0)),
    "softmax": (lambda x: torch.softmax(x, -1), (-3.0, 3.0)),
    "reciprocal": (torch.reciprocal, (0.5, 4.0)), "rsqrt": (torch.rsqrt, (0.5, 4.0)),
}


def measure_smooth(op: str, protocol: str = "cheetah", field: str = "fm64", link: str = "auto", row: int = 197,
                   rows: tuple[int, int] = (8, 32), python: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Online bytes and seconds per element of one smooth op under SPU (secret input), from
    two runs on ``rows`` rows of ``row`` elements. Bytes: the difference over the difference
    in elements, so what a run pays once cancels (as the intercept of ``fit_costs`` does); they
    repeat exactly. Seconds vary too much on a shared machine for a difference: the larger
    run's seconds over its elements, an upper bound. A softmax normalises each row of
    ``row`` (ViT-tiny's 197 tokens by default)."""
    if op not in SMOOTH:
        raise ReshapeError(f"no backend function for smooth op '{op}'; choose from: {', '.join(SMOOTH)}")
    python = python or backend_python()
    say = progress or (lambda _: None)
    fn, (lo, hi) = SMOOTH[op]
    runs = []
    for n in rows:
        image = torch.linspace(lo, hi, n * row).reshape(n, row)
        p = Plan([{"op": "act", "fn": op, "in": "input", "out": "y"}], {}, "y", image, fn(image.double()))
        raw = _execute(p, protocol, field, link, "secret", python, say)
        out = torch.tensor(raw["output"], dtype=torch.float64)
        runs.append({"elements": n * row, "online_bytes": raw["online"]["send_bytes"] + raw["online"]["recv_bytes"],
                     "online_s": raw["online"]["seconds"],
                     "max_abs_diff": (out - p.reference.reshape(-1)).abs().max().item(), "spu": raw["spu"]})
    (a, b), elements = runs, runs[1]["elements"] - runs[0]["elements"]
    return {"op": op, "protocol": protocol, "field": field, "row": row, "runs": runs,
            "online_bytes": (b["online_bytes"] - a["online_bytes"]) / elements,
            "online_us": 1e6 * b["online_s"] / b["elements"]}


def write_smooth(measured: Iterable[Mapping[str, Any]], name: str, table: str | os.PathLike[str],
                 machine: str, date: str) -> None:
    """Put per-element smooth-op costs (``measure_smooth``) into profile ``name`` of a cost table."""
    path = Path(table)
    data = read_json(path, "cost table")
    if name not in data:
        raise ReshapeError(f"{path} has no profile '{name}'; fit a profile of that name first")
    smooth = {"source": "per element, measured by `scripts/fit_pi_costs.py` (smooth ops); ops not listed: no estimate"}
    for m in measured:
        where = (f"`scripts/fit_pi_costs.py`, {m['op']} under {m['protocol']} (SPU {m['runs'][0]['spu']}, "
                 f"{m['field'].upper()}, 2 parties, 127.0.0.1, {machine}), {date}: bytes, the difference of "
                 f"{' and '.join(str(r['elements']) for r in m['runs'])} elements; seconds, the larger run's "
                 f"per element (an upper bound)"
                 + (f" in rows of {m['row']}" if m["op"] == "softmax" else "")
                 + f"; max |MPC - plaintext| {max(r['max_abs_diff'] for r in m['runs']):.1e}")
        smooth[m["op"]] = {"online_bytes": {"value": round(m["online_bytes"], 3), "source": where},
                           "online_us": {"value": round(m["online_us"], 3), "source": where}}
    data[name]["smooth"] = smooth
    write_json(path, data)


def _run_backend(python: Path, args: list[str], say: Callable[[str], None]) -> None:
    """The backend script as a subprocess; its JSON progress lines go to ``say``."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen([str(python), str(SCRIPT), *args], stdout=subprocess.PIPE,
                                stderr=err, text=True, env=env)
        assert proc.stdout is not None
        start = time.monotonic()
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            stage = event.get("stage")
            say({"compile": "compiling the network for SPU",
                 "run": f"running two {event.get('protocol', '')} parties ({event.get('link', '')} link)",
                 "done": "done"}.get(stage, str(stage)) + f" [{time.monotonic() - start:.0f}s]")
        if proc.wait() != 0:
            err.seek(0)
            lines = [line.strip() for line in err.read().splitlines() if line.strip()]
            last = next((line for line in reversed(lines) if "error" in line.lower() or "failed" in line.lower()),
                        lines[-1] if lines else f"exit status {proc.returncode}")
            hint = f" ({python} lacks the backend's packages: run `{INSTALL_HINT}`)" \
                if "ModuleNotFoundError" in last else ""
            raise ReshapeError(f"the SPU backend failed: {last[-300:]}{hint}")


def _record(source: Any, spec: ArchSpec, trained: bool, counted: Any, p: Plan,
            raw: Mapping[str, Any]) -> dict[str, Any]:
    online, setup = raw["online"], raw["setup"]
    diff = (torch.tensor(raw["output"]) - p.reference.double()).abs().max().item()
    measured = {
        "online_bytes": online["send_bytes"] + online["recv_bytes"],
        "send_bytes": online["send_bytes"], "recv_bytes": online["recv_bytes"],
        "send_actions": online["send_actions"], "online_s": online["seconds"],
        "setup_bytes": setup["send_bytes"] + setup["recv_bytes"], "setup_s": setup["seconds"],
        "compile_s": raw["compile_s"], "wall_s": raw["wall_s"],
        "by_kind": {k: {"bytes": v["send_bytes"] + v["recv_bytes"], "send_actions": v["send_actions"],
                        "seconds": v["seconds"]} for k, v in online["by_kind"].items()},
    }
    published = PUBLISHED[raw["protocol"]]
    est = estimate(counted.relus, counted.macs, counted.nonlinear_depth, published)
    return {
        "format": "reshape.pi-measured", "version": 1,
        "source": str(source), "name": spec.name, "trained": trained,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "backend": {"engine": "spu", "version": raw["spu"], "protocol": raw["protocol"],
                    "field": raw["field"], "link": raw["link"], "weights": raw["weights"], "parties": 2},
        "counts": {"relus": counted.relus, "macs": counted.macs,
                   "maxpool_comparisons": counted.comparisons, "nonlinear_depth": counted.nonlinear_depth},
        "measured": measured,
        "check": {"max_abs_diff": diff, "max_abs_output": p.reference.abs().max().item()},
        "estimate": {"profile": published, **est.to_dict()},
        **parts(measured, counted.relus, counted.macs, raw["protocol"], published),
    }


def parts(measured: Mapping[str, Any], relus: int, macs: int, protocol: str,
          published: str) -> dict[str, Any]:
    """The measured bytes split like the cost model: the ReLU layers' part, per kept ReLU and,
    with the fitted ``spu-<protocol>`` profile's slope, its fixed remainder; the rest (the
    linear layers). Each is compared with the estimate of the same thing: the ReLU part with
    the published per-ReLU constant, the total with the measured profile (the same threat
    model), never a total with a ReLU-only estimate."""
    costs = load_costs(measured=True)
    relu_bytes = measured["by_kind"].get("relu", {}).get("bytes", 0)
    profile = f"spu-{protocol}"
    relu_part: dict[str, Any] = {"bytes": relu_bytes, "per_kept_relu": relu_bytes / relus if relus else None}
    fitted = costs.get(profile)
    if fitted:
        slope = fitted["relu_online_bytes"]
        relu_part.update(profile=profile, slope_per_kept_relu=slope, fixed_bytes=relu_bytes - slope * relus)
    published_relu = relus * costs[published]["relu_online_bytes"]
    compared = {"relu_part_over_published": {"profile": published,
                                             "ratio": relu_bytes / published_relu if published_relu else None}}
    if fitted:
        total = estimate(relus, macs, 0, profile, costs).online_bytes
        compared["total_over_measured_profile"] = {"profile": profile,
                                                   "ratio": measured["online_bytes"] / total if total else None}
    return {"relu_part": relu_part, "linear_part": {"bytes": measured["online_bytes"] - relu_bytes},
            "measured_over_estimated": compared}


def read_measured(run_dir: str | os.PathLike[str], protocol: str = "cheetah", field: str = "fm64",
                  weights: str = "secret") -> dict[str, Any] | None:
    """The measurement ``reshape measure`` left in ``run_dir``, or None."""
    file = Path(run_dir) / result_name(protocol, field, weights)
    return read_json(file, "measurement") if file.is_file() else None


# ---------------------------------------------------------------- calibration

def fit_costs(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-ReLU, per-MAC and per-network (fixed) constants fitted to measurements.

    Each part of the SPU profile is fitted on its own cause, by least squares with an
    intercept: the ReLU layers' bytes (and seconds) = ``relu_online_*`` x ReLUs + a fixed
    part, the convolutions' and the rest = ``mac_online_*`` x MACs + a fixed part. The
    intercepts matter: every network pays a fixed cost in its ReLU layers (silent-OT set-up
    per layer under CHEETAH), and a fit through zero charges it to the ReLUs, overstating
    what one more ReLU costs. ``fixed_online_*`` is the sum of the two intercepts. The
    one-time setup is excluded (it does not grow with the network). Errors are relative,
    on the calibration set itself: the worst total (``*_max_rel_error``), the worst ReLU
    part (``relu_*_max_rel_error``) and every network's (``errors``).
    """
    rows = list(records)
    protocols = {r["backend"]["protocol"] for r in rows}
    if len(protocols) > 1:
        raise ReshapeError(f"fit one protocol at a time; got {', '.join(sorted(protocols))}")
    if len(rows) < 2:
        raise ReshapeError("a fit needs at least two measured networks (e.g. a width-8 ResNet18 and "
                           "the same network with masked ReLUs)")
    out: dict[str, Any] = {"protocol": protocols.pop(), "networks": len(rows), "errors": []}
    relus = torch.tensor([r["counts"]["relus"] for r in rows], dtype=torch.float64)
    macs = torch.tensor([r["counts"]["macs"] for r in rows], dtype=torch.float64)
    for key, col, total, scale in (("bytes", "bytes", "online_bytes", 1.0), ("us", "seconds", "online_s", 1e6)):
        kinds = [r["measured"]["by_kind"] for r in rows]
        relu_part = torch.tensor([k["relu"][col] * scale for k in kinds], dtype=torch.float64)
        linear_part = torch.tensor([(k["conv"][col] + k["other"][col]) * scale for k in kinds], dtype=torch.float64)
        (a, fixed_relu), (b, fixed_linear) = _line(relus, relu_part), _line(macs, linear_part)
        measured = torch.tensor([r["measured"][total] * scale for r in rows], dtype=torch.float64)
        predicted = a * relus + b * macs + fixed_relu + fixed_linear
        out[f"relu_online_{key}"], out[f"mac_online_{key}"] = a, b
        out[f"fixed_online_{key}"], out[f"relu_fixed_online_{key}"] = fixed_relu + fixed_linear, fixed_relu
        errors = (predicted - measured).abs() / measured
        relu_errors = (a * relus + fixed_relu - relu_part).abs() / relu_part
        out[f"{key}_max_rel_error"] = errors.max().item()
        out[f"relu_{key}_max_rel_error"] = relu_errors.max().item()
        if key == "bytes":
            out["errors"] = [{"source": str(r.get("source", i)), "relus": int(relus[i]), "macs": int(macs[i]),
                              "measured_bytes": measured[i].item(), "predicted_bytes": predicted[i].item(),
                              "rel_error": errors[i].item(), "relu_part_rel_error": relu_errors[i].item()}
                             for i, r in enumerate(rows)]
    return out


def _line(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (x, y), both kept >= 0: a cost
    neither falls with the count nor is negative for an empty network."""
    if len(set(x.tolist())) < 2:  # one count: no slope to see, all of it is fixed
        return 0.0, float(y.mean())
    design = torch.stack([x, torch.ones_like(x)], 1)
    slope, intercept = torch.linalg.lstsq(design, y[:, None]).solution[:, 0].tolist()
    if intercept < 0:
        return float((x * y).sum() / (x * x).sum()), 0.0
    if slope < 0:
        return 0.0, float(y.mean())
    return slope, intercept


def write_profile(fitted: Mapping[str, Any], name: str, table: str | os.PathLike[str],
                  sources: list[str], machine: str, date: str) -> None:
    """Put a fitted profile into a cost table file (``reshape/tables/pi_costs_measured.json``)."""
    path = Path(table)
    data = read_json(path, "cost table") if path.is_file() else {
        "_about": "PI cost profiles fitted to `reshape measure` records (scripts/fit_pi_costs.py); same "
                  "layout as pi_costs.json. Named explicitly (as the protocol), never listed with the "
                  "published profiles."}
    where = (f"fit by `scripts/fit_pi_costs.py` over {fitted['networks']} networks measured with "
             f"`reshape measure` under {fitted['protocol']} (SPU 0.9.5, 2 parties, 127.0.0.1, {machine}), "
             f"{date}; least squares with an intercept per part (ReLU layers on ReLUs, the rest on MACs); "
             f"max relative error of the totals {{err:.1%}}; runs: {', '.join(sources)}")
    entry = {"description": (f"Measured: SecretFlow SPU {fitted['protocol'].upper()}, FM64, two parties on one "
                             "machine (LAN-free loopback). SPU secret-shares the weights too, unlike DELPHI/"
                             "Cheetah, where the server keeps them in plaintext: linear layers cost more here. "
                             "Online cost only; the one-time setup is reported by `reshape measure` apart.")}
    for key in ("relu_online_bytes", "mac_online_bytes", "fixed_online_bytes", "relu_online_us", "mac_online_us",
                "fixed_online_us"):
        err = fitted["bytes_max_rel_error" if key.endswith("bytes") else "us_max_rel_error"]
        entry[key] = {"value": round(fitted[key], 6), "source": where.format(err=err)}
    for key in ("relu_offline_bytes", "relu_offline_us", "mac_offline_us", "round_trip_ms"):
        entry[key] = {"value": 0.0, "source": "measured online cost only (setup apart, loopback link)"}
    entry["smooth"] = data.get(name, {}).get("smooth") or {  # measured per op apart (write_smooth): kept
        "source": "no estimate: fitted on ReLU networks, no smooth op (GELU, softmax, ...) measured"}
    data[name] = entry
    write_json(path, data)
