"""The layering contract (pyproject.toml [tool.importlinter]) holds, and its check sees the whole package;
the library neither imports click nor spells a command-line option.

`make test` runs the same check before pytest; here it also runs with the suite, so a
plain `pytest` catches an upward import or a cycle too.
"""
from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
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


# -- the library never speaks the command line's language (issue 24, item 4) -------------------
#: A command-line option as the CLI spells it (``--force``, ``--batch-size``).
OPTION = re.compile(r"--[a-z][a-z-]+")
#: Files under reshape/ that may spell options (glob patterns), and why.
EXEMPT = {
    "reshape/pi_backend/spu_run.py": "a standalone script for the backend environment with its own argparse "
                                     "options; no reshape module imports it",
    "reshape/demo.py": "writes summary.md and the export README, whose commands reproduce each step: text for "
                       "a person to run, never advice in an error",
    "reshape/frontier/_options.py": "frontier_command writes the `reshape frontier` command line that reproduces "
                                    "a frontier (results.json, the demo's summary.md): text for a person to run, "
                                    "never advice in an error",
}
#: Lines that spell another program's options, not reshape's: (file, text on the line) -> why.
OTHER_PROGRAMS = {
    ("reshape/measure.py", '"--protocol", protocol'): "the backend script's (spu_run.py) own argparse options",
    ("reshape/measure.py", '"--field", field, "--link", attempt'): "the backend script's own argparse options",
    ("reshape/measure.py", '"--out", str(result_file)'): "the backend script's own argparse options",
    ("reshape/frontier/_result.py", '"rev-parse", "--short"'): "git's options (the commit a result was made at)",
    ("reshape/frontier/_result.py", '"--porcelain", "--untracked-files=no"'): "git's options (uncommitted changes)",
}


def test_no_command_line_option_is_spelled_below_the_cli():
    """A Python caller is never told to 'pass --force': library messages name parameters by
    placeholder (``$force``), which the CLI's error boundary spells as its options."""
    used, found = set(), []
    for path in sorted((ROOT / "reshape").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if any(fnmatch.fnmatch(name, pattern) for pattern in EXEMPT):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            allowed = {key for key in OTHER_PROGRAMS if key[0] == name and key[1] in line}
            used |= allowed
            if OPTION.search(line) and not allowed:
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "command-line options spelled in the library:\n" + "\n".join(found)
    assert used == set(OTHER_PROGRAMS), f"stale exemptions: {set(OTHER_PROGRAMS) - used}"


def test_only_the_command_line_imports_click(tmp_path):
    """The ``click`` contract: ``reshape`` may not import click, the CLI's own imports aside; and
    without those exceptions it fails at the CLI, so the check does see click."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    contract = next(c for c in contracts if c["id"] == "click")
    assert (contract["type"], contract["source_modules"], contract["forbidden_modules"]) == \
        ("forbidden", ["reshape"], ["click"])
    assert all(rule.startswith(("reshape.cli -> ", "reshape.cli.** -> ")) for rule in contract["ignore_imports"])
    probe = tmp_path / "probe.toml"
    probe.write_text('[tool.importlinter]\nroot_packages = ["reshape"]\ninclude_external_packages = true\n\n'
                     '[[tool.importlinter.contracts]]\nname = "probe"\ntype = "forbidden"\n'
                     'source_modules = ["reshape"]\nforbidden_modules = ["click"]\n')
    res = lint(str(probe))
    assert res.returncode == 1 and "reshape.cli" in res.stdout and "-> click" in res.stdout


def test_no_command_line_function_is_over_40_lines():
    """Issue 24: a command parses, calls one library function and prints; one that grows past
    40 lines (docstring included) holds work that belongs in the library."""
    import ast

    long = [f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in sorted((ROOT / "cli").glob("*.py"))
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 40]
    assert not long, long


def test_the_command_line_stays_under_1600_lines():
    """Issue 24's budget for cli/ (2,443 lines when pipelines lived there): options, help and
    printing only. Past it, move work into the library (and its rendering into reshape.report)."""
    lines = sum(len(path.read_text().splitlines()) for path in (ROOT / "cli").glob("*.py"))
    assert lines < 1600, f"cli/ has {lines} lines"
