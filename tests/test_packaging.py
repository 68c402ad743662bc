"""A non-editable install works: wheel built offline, installed in a fresh venv."""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"reshape": "reshape", "reshape.cli": "cli", "reshape.search_spaces": "search_spaces"}


def _package_dirs() -> set[str]:
    found = set()
    for name, folder in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    return found


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert listed == _package_dirs()


_BUILT = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")


def _not_source(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: build products anywhere, and the output folders at the top
    (``runs/``, ``demo-out/``) but not the package ``reshape/runs``."""
    top = {"runs", "demo-out"} & set(names) if Path(folder) == ROOT else set()
    return set(_BUILT(folder, names)) | top


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=_not_source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(tmp_path / "dist"), str(src)], check=True)
    wheel = next((tmp_path / "dist").glob("reshape-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    subprocess.run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True)
    # Reuse the already-installed dependencies (torch, timm, ...) without network.
    site = Path(subprocess.run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run([bin_dir / "python", "-c",
                            "import reshape, reshape.cli, reshape.search_spaces; print(reshape.cli.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(venv))
    help_out = subprocess.run([bin_dir / "reshape", "--help"], capture_output=True, text=True,
                              check=True, cwd=tmp_path).stdout
    assert "count" in help_out
    count = subprocess.run([bin_dir / "reshape", "count", "resnet18", "--dataset", "cifar10", "--json"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert '"relus": 557056' in count  # package data (dataset presets, cost table) shipped
