"""The CLI error boundary and the shared option types (issue 15, findings 3-5)."""
from __future__ import annotations

import click
from click.testing import CliRunner
import pytest
import torch

from reshape.analytic import spec_params
from reshape.cli._common import parse_target, user_errors
from reshape.errors import ReshapeError
from reshape.models import build, spec_for


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
    with pytest.raises(click.BadParameter):
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
