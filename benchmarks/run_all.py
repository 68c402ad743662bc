"""Run every benchmark in this folder, one after another, with its default settings.

    python benchmarks/run_all.py [NAME ...]     # e.g. count_speed synthesize

Each benchmark prints its own ratios measured side by side; record them, with the
command and the machine, in docs/results.md. The frontier runs its --quick preset here
(about 30 min on 2 cores) and o1_vs_search its quick one; their full presets take hours on a CPU.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
#: Arguments a benchmark gets here instead of its defaults.
ARGS = {"frontier": ["--quick"], "o1_vs_search": ["--preset", "quick"]}


def main() -> int:
    wanted = set(sys.argv[1:])
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    failed = []
    for script in scripts:
        if wanted and script.stem not in wanted:
            continue
        print(f"== {script.stem}", flush=True)
        if subprocess.run([sys.executable, str(script), *ARGS.get(script.stem, [])]).returncode:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
