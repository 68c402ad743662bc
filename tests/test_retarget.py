"""Issue 25: a spec trained on a dataset of another geometry is refused with its ReLU count
before and after, unless --retarget, which then says the new count."""
from __future__ import annotations

import json

from click.testing import CliRunner

from reshape.cli import cli
from reshape.models import spec_for
from reshape.spec import save_spec

FAST = ["--epochs", "1", "--batch-size", "128", "--limit", "256"]


def test_training_a_spec_on_another_geometry_needs_retarget(tmp_path):
    spec_path = tmp_path / "c100.json"
    save_spec(spec_for("resnet18", "cifar100", 4), spec_path)  # 3x32x32, 100 classes, widths 4/8/16/32
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", str(spec_path), "--data", "fashion-mnist-mini", *FAST, "--out", str(out)])
    # 32x32: stem 4*1024 + layer1 4*4*1024 + layer2 4*8*256 + layer3 4*16*64 + layer4 4*32*16 = 34,816
    # 28x28: stem 4*784 + layer1 4*4*784 + layer2 4*8*196 + layer3 4*16*49 + layer4 4*32*16 = 27,136
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert ("3x32x32, 100-class network with 34,816 ReLUs; on fashion-mnist-mini it becomes "
            "1x28x28, 10-class with 27,136 ReLUs (-22.1%); pass --retarget") in res.output
    assert not out.exists()  # refused before --out is claimed
    res = CliRunner().invoke(cli, ["train", str(spec_path), "--data", "fashion-mnist-mini", *FAST, "--retarget",
                                   "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "retargeted: " in res.stderr and "with 27,136 ReLUs" in res.stderr
    counted = json.loads(CliRunner().invoke(cli, ["count", str(out), "--json"]).stdout)
    assert counted["relus"] == 27_136

