"""The CLI: output formats, exit codes and one-line errors (never a traceback)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from reshape.cli import cli
from reshape.spec import save_spec


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_count_json_has_the_promised_keys():
    res = run("count", "resnet18", "--dataset", "cifar100", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {"relus", "macs", "params", "stages", "layers"} <= set(data)
    assert data["relus"] == 557_056 and data["relus_without_stem"] == 491_520
    assert data["spec"]["stem"] == {"kind": "cifar", "width": 64, "stride": 1}
    assert data["cost"]["protocol"] == "delphi"


def test_count_tables_and_per_layer(tmp_path, tiny_spec):
    path = tmp_path / "tiny.json"
    save_spec(tiny_spec, path)
    res = run("count", str(path), "--per-layer")
    assert res.exit_code == 0, res.output
    assert "layer1.0.act1" in res.output and "nonlinear depth 9" in res.output
    # stem 4*16*16 = 1,024; total: stem + stage1 (2 layers of 4x16x16) + 2 of 8x8x8 + 2 of 8x4x4 + 2 of 16x2x2
    assert "1,024" in res.output and "4,480" in res.output
    assert json.loads(run("count", str(path), "--json").output)["relus"] == 4 * 256 * 3 + 8 * 64 * 2 + 8 * 16 * 2 + 16 * 4 * 2 == 4_480


@pytest.mark.parametrize("args, message", [
    (["count", "resnt18"], "close matches: resnet18"),
])
def test_user_errors_exit_1_on_one_line(args, message):
    res = run(*args)
    assert res.exit_code == 1
    assert message in res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_malformed_spec_names_the_field(tmp_path, tiny_spec):
    data = tiny_spec.to_dict()
    data["stages"][2]["width"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    res = run("count", str(path))
    assert res.exit_code == 1
    assert res.output.strip() == "error: spec.stages[2].width: must be a positive integer, got 0"


def test_usage_errors_exit_2():
    """A value wrong by itself is a usage error (docs/architecture.md, exit codes)."""
    res = run("count", "resnet18", "--input-size", "0")
    assert res.exit_code == 2 and "'--input-size': 0 is not in the range x>=1" in res.output
    assert run("count").exit_code == 2
    assert run("count", "resnet18", "--dataset", "svhn").exit_code == 2
    assert run("nosuchcommand").exit_code == 2


def test_help_and_version_do_not_import_torch():
    code = ("import sys; from reshape.cli import cli; "
            "sys.argv=['reshape','--help']\n"
            "try:\n    cli()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert "count" in out.stdout
    ver = subprocess.run([sys.executable, "-m", "reshape", "--version"], capture_output=True, text=True)
    assert ver.returncode == 0 and "reshape, version" in ver.stdout


def test_written_files_follow_the_umask(tmp_path):
    import os

    from reshape.io import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left behind


def test_count_warns_about_unsupported_ops_and_strict_fails():
    # seresnet18's squeeze-excite gates multiply two activations (x * sigmoid(...)): 8 blocks
    res = run("count", "seresnet18", "--input-size", "32", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["unsupported_ops"] == {"aten.mul": 8}
    assert "warning: seresnet18 runs operators" in res.stderr and "aten.mul x8" in res.stderr
    strict = run("count", "seresnet18", "--input-size", "32", "--strict")
    assert strict.exit_code == 1 and "Traceback" not in strict.output
    assert strict.output.strip().startswith("error: seresnet18 runs operators")
    clean = run("count", "resnet18", "--dataset", "cifar10", "--strict", "--json")
    assert clean.exit_code == 0 and json.loads(clean.stdout)["unsupported_ops"] == {}



def test_an_interrupted_training_says_what_a_rerun_resumes(tmp_path):
    """Ctrl-C inside any command's training: the message of what is saved, exit 130."""
    import click

    from reshape.cli._common import user_errors
    from reshape.train import TrainingInterrupted

    @click.command()
    @user_errors
    def command() -> None:
        raise TrainingInterrupted(tmp_path, 1, 3)

    result = CliRunner().invoke(command, [])
    assert result.exit_code == 130
    assert f"epoch 1/3 is saved in {tmp_path}: rerun the same command" in result.output
