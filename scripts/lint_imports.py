"""Run import-linter (the ``[tool.importlinter]`` contracts in pyproject.toml) on the installed layout.

``cli/`` and ``search_spaces/`` install as ``reshape.cli`` and ``reshape.search_spaces``
through setuptools' package-dir mapping. import-linter (grimp) finds a package's modules
by walking its folder, and grimp only takes top-level root packages, so a plain
``lint-imports`` in the repository would never see the command line. This script lays
the package out as the wheel does, as a tree of symlinks in a temporary folder (the
mapping read from pyproject.toml, so it cannot drift), puts that tree first on
``sys.path`` and runs ``lint-imports`` on it; arguments are passed through
(``--verbose``, ``--contract ID``, ...), and the contracts are pyproject.toml's unless the
first argument names another file. The exit status is lint-imports' own.

    python scripts/lint_imports.py            # what `make test` runs first
    python scripts/lint_imports.py --verbose --contract layers
"""
from __future__ import annotations

import importlib
import os
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"


def package_dirs(config: Path = CONFIG) -> dict[str, Path]:
    """Installed package name -> source folder, from ``[tool.setuptools] package-dir``."""
    setuptools = tomllib.loads(config.read_text())["tool"]["setuptools"]
    mapping = setuptools.get("package-dir", {})
    return {name: config.parent / mapping.get(name, name.replace(".", "/"))
            for name in setuptools["packages"] if name.split(".")[0] == name or name in mapping}


def lay_out(target: Path, config: Path = CONFIG) -> None:
    """Symlink each mapped package folder to where its dotted name puts it under ``target``.

    A mapped subpackage (``reshape.cli``) is linked inside its parent, whose own entries
    are linked one by one, so the tree holds every module exactly where the wheel does.
    """
    dirs = package_dirs(config)
    for name in sorted(dirs, key=lambda n: n.count(".")):
        where = target.joinpath(*name.split("."))
        mapped_below = [n for n in dirs if n.startswith(name + ".")]
        if not mapped_below:
            where.symlink_to(dirs[name], target_is_directory=True)
            continue
        where.mkdir(parents=True)
        for entry in dirs[name].iterdir():
            if entry.name != "__pycache__":
                (where / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())


def main(argv: list[str]) -> None:
    """Lay the package out in a temporary folder and run lint-imports on it (exits with its status)."""
    from importlinter.cli import lint_imports_command

    home = os.getcwd()
    if argv and not argv[0].startswith("-"):
        argv = [str(Path(argv[0]).resolve()), *argv[1:]]  # read after the chdir below
    else:
        argv = [str(CONFIG), *argv]
    with tempfile.TemporaryDirectory(prefix="reshape-lint-") as tmp:
        lay_out(Path(tmp))
        # lint-imports puts the working directory first on sys.path: it must be the laid-out tree.
        os.chdir(tmp)
        sys.path.insert(0, tmp)
        importlib.invalidate_caches()
        try:
            # The graph is small and the folder new each time: a cache would only go stale.
            lint_imports_command.main([argv[0], "--no-cache", "--no-logo", *argv[1:]], prog_name="lint-imports")
        finally:
            os.chdir(home)


if __name__ == "__main__":
    main(sys.argv[1:])
