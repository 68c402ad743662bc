"""Run one network plan under SecretFlow SPU with two parties and report what it cost.

A standalone script for the separate backend environment (``make pi-backend``: Python
3.11, ``spu`` 0.9.5, jax 0.4.34, numpy < 2). It imports only jax, spu, numpy and
safetensors, never ``reshape``: the main tool (``reshape.measure``) writes the plan and
runs this script as a subprocess, so the main package never needs jax.

    python spu_run.py PLAN.json TENSORS.safetensors --protocol semi2k --out RESULT.json

The plan is a list of ops over named values (``conv``, ``relu``, ``maxpool``, ``add``,
``head``, and ``act``: one smooth function of ``ACTS``, to price it per element) with BN
already folded into the convolutions; the tensors file holds the
weights, the masks' kept positions and one input image. Weights and image are
secret-shared inputs (SPU's model: the weights are secret too), the kept positions are
public constants of the program. A masked ReLU gathers its kept positions, applies ReLU
to those alone, concatenates the untouched rest and undoes the permutation, so its cost
scales with the kept count (a ``where`` over the mask would pay for every element).

Progress goes to stdout as JSON lines (``{"stage": ...}``); the result, to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import socket
import sys
import tempfile
import time
from typing import Any

import numpy as np

PROTOCOLS = {"semi2k": "SEMI2K", "cheetah": "CHEETAH"}
FIELDS = {"fm32": "FM32", "fm64": "FM64", "fm128": "FM128"}
# pphlo op -> layer kind. Comparisons and selects only come from ReLUs and max-pools (the
# head's 1/HW is folded into its weights, so no multiply by a constant remains).
KIND = {"convolution": "conv", "dot": "conv", "dot_general": "conv",
        "less": "relu", "greater": "relu", "maximum": "relu", "select": "relu",
        "multiply": "relu", "reduce_window": "relu", "greater_equal": "relu",
        "less_equal": "relu"}
OP_LINE = re.compile(r"- pphlo\.(.+?), executed (\d+) times, duration ([\d.e+-]+)s, "
                     r"send bytes (\d+) recv bytes (\d+), send actions (\d+), recv actions (\d+)")
LINK_LINE = re.compile(r"Link details: total send bytes (\d+), recv bytes (\d+), "
                       r"send actions (\d+), recv actions (\d+)")


def _acts() -> dict[str, Any]:
    """Smooth functions an ``act`` op applies, by the name ``reshape.count`` gives them."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    return {"gelu": lambda x: jax.nn.gelu(x, approximate=False), "silu": jax.nn.silu,
            "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "exp": jnp.exp, "hardswish": jax.nn.hard_swish,
            "softmax": lambda x: jax.nn.softmax(x, axis=-1), "reciprocal": lambda x: 1 / x, "rsqrt": lax.rsqrt}


def say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def forward(plan: dict[str, Any], keep: dict[str, np.ndarray]):
    """The plan as a JAX function of (image, weights dict)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def relu(x, idx):
        flat = x.reshape(-1)
        if idx is None or idx.size == flat.size:
            return jax.nn.relu(x)
        if idx.size == 0:
            return x
        rest = np.setdiff1d(np.arange(flat.size), idx)
        order = np.concatenate([idx, rest])
        mixed = jnp.concatenate([jax.nn.relu(flat[idx]), flat[rest]])
        return mixed[np.argsort(order)].reshape(x.shape)

    acts = _acts()

    def run(image, w):
        values = {"input": image}
        for op in plan["ops"]:
            kind = op["op"]
            if kind == "conv":
                p = op["padding"]
                y = lax.conv_general_dilated(values[op["in"]], w[op["weight"]], (op["stride"],) * 2,
                                             [(p, p), (p, p)], dimension_numbers=("NCHW", "OIHW", "NCHW"))
                y = y + w[op["bias"]].reshape(1, -1, 1, 1)
            elif kind == "relu":
                y = relu(values[op["in"]], keep.get(op["keep"]) if op.get("keep") else None)
            elif kind == "maxpool":
                k, s, p = op["kernel"], op["stride"], op["padding"]
                y = lax.reduce_window(values[op["in"]], -jnp.inf, lax.max, (1, 1, k, k), (1, 1, s, s),
                                      [(0, 0), (0, 0), (p, p), (p, p)])
            elif kind == "add":
                a, b = op["in"]
                y = values[a] + values[b]
            elif kind == "head":  # global sum pool (1/HW folded into the weight) + linear
                y = values[op["in"]].sum(axis=(2, 3)) @ w[op["weight"]].T + w[op["bias"]]
            elif kind == "act":
                y = acts[op["fn"]](values[op["in"]])
            else:
                raise ValueError(f"unknown op {kind!r}")
            values[op["out"]] = y
        return values[plan["output"]]

    return run


def config(protocol: str, field: str, profile: bool):
    from spu import libspu

    cfg = libspu.RuntimeConfig(protocol=getattr(libspu.ProtocolKind, PROTOCOLS[protocol]),
                               field=getattr(libspu.FieldType, FIELDS[field]))
    cfg.enable_pphlo_profile = profile
    return cfg


def compile_plan(plan, tensors, weights_vis: str):
    """(main executable, warm-up executable, flat input arrays, their visibilities)."""
    import jax.numpy as jnp
    from spu import libspu
    from spu.utils import frontend as fe

    keep = {k[len("keep."):]: v.astype(np.int64) for k, v in tensors.items() if k.startswith("keep.")}
    names = sorted(k for k in tensors if k.startswith("w."))
    weights = {k[2:]: tensors[k].astype(np.float32) for k in names}
    image = tensors["image"].astype(np.float32)
    fn = forward(plan, keep)

    def net(x, *ws):
        return fn(x, dict(zip([n[2:] for n in names], ws)))

    secret, public = libspu.Visibility.VIS_SECRET, libspu.Visibility.VIS_PUBLIC
    wvis = secret if weights_vis == "secret" else public
    in_names = ["image"] + names
    vis = [secret] + [wvis] * len(names)
    args = [image] + [weights[n[2:]] for n in names]
    exe, _ = fe.compile(fe.Kind.JAX, net, args, {}, in_names, vis, lambda out: ["out"])
    # A one-time setup (Cheetah's OT/HE keys) is paid by the first op that needs it: a
    # warm-up ReLU on the same link pays it, so the network's run is the online cost.
    warm_in = np.linspace(-1, 1, 64, dtype=np.float32)
    warm, _ = fe.compile(fe.Kind.JAX, lambda x: jnp.maximum(x, 0).reshape(8, 8) @ x.reshape(8, 8),
                         [warm_in], {}, ["warm"], [secret], lambda out: ["warm_out"])
    return exe, warm, in_names, args, vis, warm_in


def party(rank: int, desc_parties, link: str, cfg_bytes: bytes, exe_bytes: bytes, warm_bytes: bytes,
          shares: dict[str, tuple[bytes, list[bytes]]], log_path: str, queue) -> None:
    """One party: link up, run the warm-up then the network; rank 0 logs the profile."""
    from spu import api, libspu

    try:
        if rank == 0:  # SPU logs its profile to stdout; keep rank 0's for parsing
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
        cfg = libspu.RuntimeConfig()
        cfg.ParseFromString(cfg_bytes)
        if rank != 0:
            cfg.enable_pphlo_profile = False
        desc = libspu.link.Desc()
        for pid, host in desc_parties:
            desc.add_party(pid, host)
        desc.recv_timeout_ms = 3_600_000
        desc.http_timeout_ms = 3_600_000
        ctx = libspu.link.create_brpc(desc, rank) if link == "brpc" else libspu.link.create_mem(desc, rank)
        rt = api.Runtime(ctx, cfg)
        exe, warm = libspu.Executable(), libspu.Executable()
        exe.ParseFromString(exe_bytes)
        warm.ParseFromString(warm_bytes)
        times = {}
        for key, program in (("setup", warm), ("online", exe)):
            for name in program.input_names:
                rt.set_var(name, _share(shares[name]))
            if rank == 0:
                os.write(1, f"\n@@@ {key}\n".encode())
            start = time.perf_counter()
            rt.run(program)
            times[key] = time.perf_counter() - start
        out = rt.get_var("out")
        queue.put((rank, times, (out.meta, list(out.share_chunks))))
    except BaseException as exc:  # report, don't hang the other side
        queue.put((rank, None, repr(exc)))


def _share(data: tuple[bytes, list[bytes]]):
    from spu import libspu

    share = libspu.Share()
    share.meta, share.share_chunks = data
    return share


def parse_log(text: str) -> dict[str, Any]:
    """Rank 0's profile per phase: link totals and per-op rows."""
    phases: dict[str, Any] = {}
    for chunk in text.split("\n@@@ ")[1:]:
        key, _, body = chunk.partition("\n")
        ops = {}
        for m in OP_LINE.finditer(body):
            name = m.group(1)
            ops[name] = {"count": int(m.group(2)), "seconds": float(m.group(3)),
                         "send_bytes": int(m.group(4)), "recv_bytes": int(m.group(5)),
                         "send_actions": int(m.group(6)), "recv_actions": int(m.group(7))}
        link = LINK_LINE.search(body)
        if link is None:
            raise RuntimeError(f"SPU printed no link details for the {key} run")
        phases[key] = {"send_bytes": int(link.group(1)), "recv_bytes": int(link.group(2)),
                       "send_actions": int(link.group(3)), "recv_actions": int(link.group(4)),
                       "ops": ops}
    return phases


def by_kind(ops: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    kinds: dict[str, dict[str, float]] = {k: {"send_bytes": 0, "recv_bytes": 0, "send_actions": 0,
                                               "seconds": 0.0} for k in ("relu", "conv", "other")}
    for name, row in ops.items():
        kind = kinds[KIND.get(name, "other")]
        for key in kind:
            kind[key] += row[key]
    return kinds


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan")
    ap.add_argument("tensors")
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), default="semi2k")
    ap.add_argument("--field", choices=sorted(FIELDS), default="fm64")
    ap.add_argument("--link", choices=("brpc", "mem"), default="brpc",
                    help="brpc: two processes over 127.0.0.1; mem: two in-process parties")
    ap.add_argument("--weights", choices=("secret", "public"), default="secret")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from safetensors.numpy import load_file
    from spu import api, libspu

    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    tensors = load_file(args.tensors)
    say(stage="compile")
    t0 = time.perf_counter()
    exe, warm, in_names, arrays, vis, warm_in = compile_plan(plan, tensors, args.weights)
    compile_s = time.perf_counter() - t0
    cfg = config(args.protocol, args.field, profile=True)
    io = api.Io(2, cfg)
    per_rank: list[dict[str, tuple[bytes, list[bytes]]]] = [{}, {}]
    for name, array, v in [*zip(in_names, arrays, vis), ("warm", warm_in, libspu.Visibility.VIS_SECRET)]:
        for rank, share in enumerate(io.make_shares(array, v)):
            per_rank[rank][name] = (share.meta, list(share.share_chunks))

    say(stage="run", link=args.link, protocol=args.protocol)
    if args.link == "brpc":
        parties = [(f"p{r}", f"127.0.0.1:{port}") for r, port in enumerate(free_ports(2))]
        ctx = mp.get_context("spawn")  # JAX is multithreaded: no fork
    else:
        parties = [(f"p{r}", f"thread_{r}") for r in range(2)]
        ctx = None
    log_path = os.path.join(tempfile.mkdtemp(prefix="spu-"), "rank0.log")
    common = (parties, args.link, cfg.SerializeToString(), exe.SerializeToString(), warm.SerializeToString())
    if ctx is not None:
        queue = ctx.Queue()
        workers = [ctx.Process(target=party, args=(r, *common, per_rank[r], log_path, queue)) for r in range(2)]
    else:  # in-process parties: rank 0 redirects this process's stdout, restored below
        import queue as queues
        import threading
        queue = queues.Queue()
        workers = [threading.Thread(target=party, args=(r, *common, per_rank[r], log_path, queue))
                   for r in range(2)]
    stdout = os.dup(1)
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    results = {}
    for _ in range(2):
        rank, times, out = queue.get()
        if times is None:
            for w in workers:
                if hasattr(w, "terminate"):
                    w.terminate()
            os.dup2(stdout, 1)
            raise SystemExit(f"party {rank} failed: {out}")
        results[rank] = (times, out)
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    os.dup2(stdout, 1)
    with open(log_path, encoding="utf-8", errors="replace") as f:
        phases = parse_log(f.read())
    output = io.reconstruct([_share(results[r][1]) for r in range(2)])
    times = results[0][0]
    online, setup = phases["online"], phases["setup"]
    result = {
        "format": "reshape.pi-measure", "version": 1,
        "protocol": args.protocol, "field": args.field, "link": args.link, "weights": args.weights,
        "spu": _version(), "compile_s": compile_s, "wall_s": wall,
        "online": {"seconds": times["online"], "send_bytes": online["send_bytes"],
                   "recv_bytes": online["recv_bytes"], "send_actions": online["send_actions"],
                   "by_kind": by_kind(online["ops"]), "ops": online["ops"]},
        "setup": {"seconds": times["setup"], "send_bytes": setup["send_bytes"],
                  "recv_bytes": setup["recv_bytes"], "send_actions": setup["send_actions"]},
        "output": np.asarray(output, dtype=np.float64).reshape(-1).tolist(),
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, args.out)
    say(stage="done", seconds=times["online"], send_bytes=online["send_bytes"])
    return 0


def _version() -> str:
    from spu import version

    return getattr(version, "__version__", "?")


if __name__ == "__main__":
    sys.exit(main())
