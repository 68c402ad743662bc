"""Method commands make their options from the params dataclasses (issue 24, item 5): a
default, a range, a help text live in the dataclass alone."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from reshape.cli import cli
from reshape.cli._params import method_options, option_name
from reshape.methods import MethodResult, get_method
from reshape.methods._registry import _REGISTRY, Method

#: command -> (method whose params it offers, fields it offers its own way)
COMMANDS = {"senet": ("senet", {}), "snl": ("snl", {}), "shallow": ("shallow", {"macs"})}


def command_options(name: str) -> dict[str, click.Option]:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    return {p.name: p for p in command.params if isinstance(p, click.Option)}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_params_field_is_an_option_with_the_dataclass_default_and_help(command):
    method_name, own = COMMANDS[command]
    method = get_method(method_name)
    options = command_options(command)
    for f in dataclasses.fields(method.params_type):
        if f.name in own:
            continue
        option = options[f.name]
        assert option_name(f) in option.opts, f.name
        assert option.default == getattr(method.defaults, f.name), f.name
        assert option.help == f.metadata["help"] and option.help, f.name


def test_a_changed_default_changes_the_option(monkeypatch):
    snl = get_method("snl")
    monkeypatch.setitem(_REGISTRY, "snl", dataclasses.replace(snl, defaults=snl.params(lam=0.25)))
    lam = next(o for o in method_options("snl") if o.name == "lam")
    assert (lam.opts, lam.default) == (["--lambda"], 0.25)


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """Runs a method command up to ``Method.fit``, which records what it was given."""
    calls: list[tuple[str, object, object]] = []

    def fit(self: Method, teacher, budget, out, setting, params=None, force=False, labels=None):
        calls.append((self.name, params, setting))
        return MethodResult(self.name, self.family, budget, str(out), 0, 0, 0, None, {}, {}, {}, 0.0)

    monkeypatch.setattr(Method, "fit", fit)
    for command in ("senet", "snl"):
        monkeypatch.setattr(f"reshape.cli.{command}.teacher_run", lambda *args: None)

    def run(*args: str) -> tuple[str, object, object]:
        res = CliRunner().invoke(cli, [args[0], str(tmp_path), "--budget", "2k", "--data", "fashion-mnist-mini",
                                       "--out", str(tmp_path / "out"), "--json", *args[1:]])
        assert res.exit_code == 0, res.output
        return calls.pop()

    return run


def test_snl_with_no_options_builds_the_registered_defaults(captured):
    name, params, setting = captured("snl")
    assert (name, params) == ("snl", get_method("snl").params())
    assert (setting.epochs, setting.kd_alpha) == (10, 0.5)


def test_options_given_override_the_preset_and_the_rest_stay_its(captured):
    _, params, _ = captured("snl", "--preset", "short", "--lambda", "1e-3", "--lr", "0.01", "--epochs", "4")
    assert params == get_method("snl").params("short", lam=1e-3, final_lr=0.01)
    name, params, _ = captured("senet", "--allocation", "uniform", "--ranking", "4,1,2,3", "--move-in-last-epoch")
    assert (name, params) == ("senet_uniform", get_method("senet_uniform").params(ranking=(4, 1, 2, 3),
                                                                                   move_in_last_epoch=True))


@pytest.mark.parametrize("args, option", [
    (["--ranking", "a,b"], "--ranking"),
    (["--density", "0"], "--density"),
    (["--sensitivity", "nope"], "--sensitivity"),
    (["--schedule", "linear"], "--schedule"),
])
def test_a_value_out_of_the_fields_range_or_choices_is_a_usage_error(args, option):
    res = CliRunner().invoke(cli, ["senet", ".", "--budget", "2k", "--data", "fashion-mnist-mini", "--out", "x",
                                   *args])
    assert res.exit_code == 2 and option in res.output, res.output


def test_importing_the_method_commands_does_not_import_torch():
    code = "import sys, reshape.cli.senet, reshape.cli.snl, reshape.cli.shallow; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
