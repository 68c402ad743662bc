"""One process or many: the device, the rank and the DDP wrapping the trainer runs with.

Under ``torchrun`` with N processes (``WORLD_SIZE`` > 1 in the environment) the
process group is initialised from the environment variables torchrun sets (NCCL on
CUDA, gloo on CPU), each process takes the GPU ``LOCAL_RANK`` and only rank 0 writes
files. A single process runs the same code with rank 0 of a world of 1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ReshapeError


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def context(device: str = "auto") -> Context:
    """The process's place in the run; joins the process group when torchrun started it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Context(0, 1, resolve_device(device))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and device != "cpu":
        torch.cuda.set_device(local)
        target, backend = torch.device("cuda", local), "nccl"
    else:
        target, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Context(dist.get_rank(), dist.get_world_size(), target)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an unavailable or unknown device is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ReshapeError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ReshapeError(f"device '{name}' asked for but CUDA is not available; set $device to cpu", param="device")
    return device


def wrap(model: nn.Module, ctx: Context) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several processes."""
    if ctx.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.cuda else None)


def sum_all(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    """``values`` summed over every process (in place; a no-op for one process)."""
    if ctx.world > 1:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather(obj: Any, ctx: Context) -> list[Any]:
    """``obj`` of every process, in rank order (``[obj]`` for one process); every rank must call it."""
    if ctx.world == 1:
        return [obj]
    objects: list[Any] = [None] * ctx.world
    dist.all_gather_object(objects, obj)
    return objects


def sync_buffers(model: nn.Module, ctx: Context) -> None:
    """Give every process rank 0's buffers (BatchNorm statistics, masks).

    DDP broadcasts them at the start of each training forward, but the last batch
    updates each process's statistics with its own data; evaluating or saving after
    that without this step would score a different model on each process.
    """
    if ctx.world > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def is_main() -> bool:
    """True in a single process and in rank 0 of a process group: the one that reports."""
    return not dist.is_initialized() or dist.get_rank() == 0


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()
