"""OpenMP set up for a machine that others share, before torch loads (``configure_threads``).

It has to run before torch is imported (libgomp reads its variables once, when torch loads
it), so this module imports nothing heavy; ``reshape.cli.main`` calls it first.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import MutableMapping

#: cgroup files holding a CPU quota: v2 ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD"), v1 quota and period.
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def available_cpus() -> int:
    """The CPUs this process may actually use: its affinity mask, capped by a cgroup CPU quota.

    ``os.cpu_count()`` (and OpenMP's default) counts the machine, not a container's or a
    ``taskset``'s share; threads beyond the share only queue for it.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = _CGROUP_V2.read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota, period = (f.read_text().strip() for f in _CGROUP_V1)
        except (OSError, ValueError):
            return max(1, cpus)
    if quota not in ("max", "-1") and int(period) > 0:
        cpus = min(cpus, math.ceil(int(quota) / int(period)))
    return max(1, cpus)


def configure_threads(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set OpenMP for a shared machine unless the user chose: returns what it set.

    ``OMP_WAIT_POLICY=PASSIVE``: an idle OpenMP thread sleeps instead of spinning, so
    PyTorch's threads stop burning the CPU time other jobs (and its own other threads)
    need; on a loaded 2-core machine spinning threads cut training to a few percent of
    its speed. ``OMP_NUM_THREADS``: the CPUs actually available (``available_cpus``).
    libgomp reads both once, when torch loads it, so this runs before torch is imported
    and does nothing when torch is already loaded (reshape called from inside another
    program, which has made its own choice). A variable the user set is left alone.
    """
    if "torch" in sys.modules:
        return {}
    chosen = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(available_cpus())}
    chosen = {k: v for k, v in chosen.items() if not environ.get(k)}
    environ.update(chosen)
    return chosen
