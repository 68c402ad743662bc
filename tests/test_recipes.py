"""recipes/: every `reshape COMMAND --flag` the scripts run exists, and the shipped specs count
as derived by hand. Parsing only: no training (QUICK=1 runs the scripts end to end)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reshape.cli import COMMANDS, cli

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
SCRIPTS = sorted(RECIPES.glob("*.sh"))
_COMMAND = re.compile(r"(?:^|[;&|(]|\bthen\b|\bdo\b)\s*reshape\s+(\S+)(.*)")
_FLAG = re.compile(r"(?<![\w$-])--[a-z][a-z0-9-]*")
_ARRAY = re.compile(r"\b([A-Z_][A-Z0-9_]*)\+?=\((.*?)\)")
_EXPAND = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\[@\]\}")


def logical_lines(text: str) -> list[str]:
    """Shell lines without comments, backslash continuations joined."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return " ".join(line[:-1] if line.endswith("\\") else line + "\n" for line in lines).splitlines()


def commands(text: str, arrays: dict[str, set[str]]) -> list[tuple[str, set[str]]]:
    """(command, flags) of every `reshape COMMAND ...` line; "${NAME[@]}" adds the flags of NAME."""
    found = []
    for line in logical_lines(text):
        m = _COMMAND.search(line)
        if m:
            rest = m.group(2)
            flags = set(_FLAG.findall(rest))
            for name in _EXPAND.findall(rest):
                flags |= arrays[name]
            found.append((m.group(1), flags))
    return found


def array_flags(texts: list[str]) -> dict[str, set[str]]:
    """Flags of every bash array assigned in the scripts, per array name (all branches together)."""
    arrays: dict[str, set[str]] = {}
    for text in texts:
        for line in logical_lines(text):
            for name, body in _ARRAY.findall(line):
                arrays.setdefault(name, set()).update(_FLAG.findall(body))
    return arrays


def options(name: str) -> set[str]:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    assert command is not None
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def all_commands() -> list[tuple[str, str, set[str]]]:
    texts = [p.read_text() for p in SCRIPTS]
    arrays = array_flags(texts)
    return [(p.name, cmd, flags) for p, text in zip(SCRIPTS, texts) for cmd, flags in commands(text, arrays)]


def test_parser_sees_flags_arrays_and_continuations():
    text = 'A=(--limit 256)\n# reshape nope --x\nreshape train m --out "$d" \\\n    ${W:+--width "$W"} "${A[@]}"\n'
    assert commands(text, array_flags([text])) == [("train", {"--out", "--width", "--limit"})]


def test_every_recipe_command_and_flag_exists():
    found = all_commands()
    assert {cmd for _, cmd, _ in found} >= {"train", "snl", "senet", "synthesize", "pareto", "count"}
    bad = [f"{script}: reshape {cmd} {sorted(flags - options(cmd))}" if cmd in COMMANDS
           else f"{script}: no command reshape {cmd}"
           for script, cmd, flags in found if cmd not in COMMANDS or flags - options(cmd)]
    assert not bad, bad


def test_every_recipe_has_strict_mode_and_quick():
    common = (RECIPES / "_common.sh").read_text()
    assert "set -euo pipefail" in common and 'QUICK_ARGS=(--limit 256)' in common
    for script in SCRIPTS:
        if script.name != "_common.sh":
            assert 'source "$(dirname "$0")/_common.sh"' in script.read_text(), script.name


@pytest.mark.parametrize("spec, relus", [
    # methods.md: 16,384 + 65,536 + 81,920 + 102,400 + 76,800
    ("hrn_5x5x3x_m16.json", 343_040),
])
def test_shipped_specs_count_as_derived(spec, relus):
    res = CliRunner().invoke(cli, ["count", str(RECIPES / "specs" / spec), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["relus"] == relus
