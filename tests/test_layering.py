"""The layering contract (pyproject.toml [tool.importlinter]) holds, and its check sees the whole package.

`make test` runs the same check before pytest; here it also runs with the suite, so a
plain `pytest` catches an upward import or a cycle too.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "lint_imports.py"


def lint(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_lint_imports_keeps_every_contract():
    res = lint()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "BROKEN" not in res.stdout and "0 broken" in res.stdout


def test_the_check_sees_the_command_line_installed_as_reshape_cli(tmp_path):
    """cli/ installs as reshape.cli through package-dir: a contract about it must be able to fail."""
    contracts = tmp_path / "probe.toml"
    contracts.write_text('[tool.importlinter]\nroot_packages = ["reshape"]\n\n'
                         '[[tool.importlinter.contracts]]\nname = "probe"\ntype = "forbidden"\n'
                         'source_modules = ["reshape.cli.train"]\nforbidden_modules = ["reshape.train"]\n')
    res = lint(str(contracts))
    assert res.returncode == 1 and "reshape.cli.train -> reshape.train" in res.stdout
