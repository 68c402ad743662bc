"""The CLI error boundary and the shared option types (issue 15, findings 3-5); structured errors
that name parameters, spelled for Python or the command line (issue 24, item 4)."""
from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner
import pytest
import torch

from reshape.analytic import spec_params
from reshape.cli._common import NO_OPTION, name_params, option_name, user_errors
from reshape.errors import PARAMS, OwnershipError, ParamError, ReshapeError
from reshape.models import build, narrow, spec_for
from reshape.runs import RunDir
from reshape.values import parse_target


def boundary(exc: BaseException, monkeypatch, debug: str | None = None) -> tuple[int | None, str]:
    """Exit code and stderr of a command raising ``exc`` behind the boundary."""
    if debug is None:
        monkeypatch.delenv("RESHAPE_DEBUG", raising=False)
    else:
        monkeypatch.setenv("RESHAPE_DEBUG", debug)

    @click.command()
    @user_errors
    def command() -> None:
        raise exc

    res = CliRunner().invoke(command, [])
    code = res.exit_code if isinstance(res.exception, SystemExit) or res.exception is None else None
    return code, res.output


@pytest.mark.parametrize("exc, line", [
    (ReshapeError("spec.x: bad"), "error: spec.x: bad"),
    (FileNotFoundError(2, "No such file or directory", "/nope/x.json"),
     "error: cannot use /nope/x.json: No such file or directory"),
    (OSError(18, "Invalid cross-device link", "a", None, "b"), "error: cannot use a -> b: Invalid cross-device link"),
    (MemoryError(), "error: not enough memory (MemoryError)"),
    (RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried 1 TB"),
     "error: not enough memory ([enforce fail] DefaultCPUAllocator: can't allocate memory"),
    (ValueError("batch_size should be a positive integer value"),
     "error: batch_size should be a positive integer value (if this looks like a bug, rerun with RESHAPE_DEBUG=1"),
])
def test_user_facing_errors_become_one_line_exit_1(exc, line, monkeypatch):
    code, out = boundary(exc, monkeypatch)
    assert code == 1 and out.startswith(line) and out.count("\n") == 1 and "Traceback" not in out


def test_a_decode_error_names_the_file_being_read(tmp_path, monkeypatch):
    path = tmp_path / "table.txt"
    path.write_bytes(b"ok\n\xff\n")

    def read() -> None:
        with open(path, encoding="utf-8") as fh:
            fh.read()

    try:
        read()
    except UnicodeDecodeError as exc:
        code, out = boundary(exc, monkeypatch)
    assert code == 1 and out == f"error: file {path} is not UTF-8 text (invalid start byte at byte 3); save it as UTF-8\n"


def test_bugs_keep_their_traceback_and_debug_shows_every_one(monkeypatch):
    assert boundary(KeyError("x"), monkeypatch)[0] is None  # a bug is raised, not turned into a line
    assert boundary(ReshapeError("bad"), monkeypatch, debug="1")[0] is None
    assert boundary(ReshapeError("bad"), monkeypatch, debug="0")[0] == 1


@pytest.mark.parametrize("text, value", [
    ("0.7", 0.7), ("1.0", 1.0), ("70%", 0.7), ("100%", 1.0), ("1", 1), ("300k", 300_000), ("1.5k", 1_500),
])
def test_a_target_is_a_count_or_a_fraction(text, value):
    parsed = parse_target(text)
    assert parsed == value and type(parsed) is type(value)  # 1 is one ReLU, 1.0 all of them


@pytest.mark.parametrize("text", ["1.5", "0", "0.0", "150%", "0%", "-1", "abc", "1.5.2"])
def test_a_target_neither_count_nor_fraction_is_refused(text):
    with pytest.raises(ValueError, match="neither a count"):
        parse_target(text)


@pytest.mark.parametrize("name, data, width", [
    ("resnet18", "cifar100", None), ("resnet50", "imagenet", None), ("resnet34", "fashion-mnist-mini", 4),
])
def test_spec_params_equals_the_built_model(name, data, width):
    """The memory check counts parameters from the spec alone; it must match what building allocates."""
    spec = spec_for(name, data, width)
    with torch.device("meta"):
        model = build(spec)
    assert spec_params(spec) == sum(p.numel() for p in model.parameters())


def test_a_spec_too_large_is_refused_before_allocating(tiny_spec):
    huge = tiny_spec.replace(stages=tuple(s.__class__(60_000, s.depth) if i == 0 else s
                                          for i, s in enumerate(tiny_spec.stages)))
    with pytest.raises(ReshapeError, match=r"not enough memory to build .* stage widths 60000/8/8/16"):
        build(huge)


# -- structured errors: the library names parameters, the CLI spells them (issue 24, item 4) -----
def refused_claim(tmp_path) -> OwnershipError:
    """The refusal of a folder holding another setting's run, as the library raises it."""
    RunDir(tmp_path / "run").claim("probe", {"params": {"lam": 0.1}}, lock=False)
    with pytest.raises(OwnershipError) as err:
        RunDir(tmp_path / "run").claim("probe", {"params": {"lam": 0.2}}, lock=False)
    return err.value


def test_a_python_caller_is_told_its_own_parameter_names(tmp_path):
    exc = refused_claim(tmp_path)
    assert isinstance(exc, ReshapeError) and exc.param == "out"
    assert str(exc) == (f"{tmp_path / 'run'} holds a probe run with other settings (params.lam: 0.1 -> 0.2); "
                        "pass force=True to start it over, or pick a new out")


def test_the_command_line_is_told_its_options(tmp_path, monkeypatch):
    """The boundary spells ``$force``/``$out`` as options and a run key by the command's own name."""
    exc = refused_claim(tmp_path)

    @click.command()
    @click.option("--out")
    @click.option("--force", is_flag=True)
    @user_errors
    def command(out: str | None, force: bool) -> None:
        name_params({"params.lam": "--lambda"})
        raise exc

    monkeypatch.delenv("RESHAPE_DEBUG", raising=False)
    res = CliRunner().invoke(command, [])
    assert res.exit_code == 1 and res.output == (
        f"error: {tmp_path / 'run'} holds a probe run with other settings (--lambda: 0.1 -> 0.2); "
        "pass --force to start it over, or pick a new --out\n")


def test_a_wrong_value_names_its_parameter():
    with pytest.raises(ParamError) as err:
        narrow(spec_for("resnet18", "cifar10"), 0)
    assert isinstance(err.value, ValueError) and err.value.param == "width"
    assert str(err.value) == "width must be a positive integer, got 0"
    assert err.value.render(option_name) == "--width must be a positive integer, got 0"


def test_only_known_placeholders_are_replaced():
    exc = ReshapeError("costs $5 in {braces}; $outside, $out, ${a.b} and $resume")
    assert str(exc) == "costs $5 in {braces}; $outside, out, a.b and resume=True"
    assert exc.render(option_name) == "costs $5 in {braces}; $outside, --out, a.b and resume=True"


def test_every_parameter_a_message_names_is_an_option_of_some_command():
    """``$name`` reads as ``--name`` (or its rename) on the command line: that option must exist."""
    from reshape.cli import COMMANDS, cli

    ctx = click.Context(cli)
    options = {opt for name in COMMANDS for p in cli.get_command(ctx, name).params for opt in p.opts}
    missing = {name: option_name(name) for name in PARAMS - set(NO_OPTION) if option_name(name) not in options}
    assert not missing


def test_every_placeholder_the_library_writes_is_known():
    """A misspelt ``$name`` would reach the user as written: each one in a module or table is in PARAMS
    (reshape/errors.py, which describes the syntax, aside)."""
    root = Path(__file__).resolve().parents[1] / "reshape"
    files = [f for f in [*root.rglob("*.py"), *root.joinpath("tables").glob("*.json")] if f.name != "errors.py"]
    used = {name for f in files for name in re.findall(r"\$([a-z_][a-z0-9_]*)", f.read_text(encoding="utf-8"))}
    assert used and used <= PARAMS, used - PARAMS
