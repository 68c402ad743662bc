"""The public API works as documented: the Python snippets of README.md and docs/ run verbatim.

The snippets are read from the documents (never copied here), so a doc edit that breaks
them fails this test. They run in a fresh interpreter, twice in one process and after
importing the accounting module first: ``reshape.count`` once became a submodule that
shadowed the function ``reshape.count`` (issue 14).
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import reshape
from reshape.models import build
from reshape.report.export import save_timm
from reshape.spec import save_spec

ROOT = Path(__file__).resolve().parents[1]

#: Documented snippets that run offline in seconds, by (document, index of its python block).
#: The others need datasets, trained runs or a `model` defined elsewhere on the page.
RUNNABLE = [("README.md", 0), ("docs/deepreshape.md", 0), ("docs/spec.md", 0)]


def python_snippets(doc: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", doc.read_text(), flags=re.S | re.M)


def test_readme_and_docs_snippets_run_twice_after_the_accounting_import(tmp_path: Path, tiny_spec) -> None:
    snippets = [python_snippets(ROOT / doc)[i] for doc, i in RUNNABLE]
    assert "reshape.count(" in snippets[0]  # the README's own count call is among them
    program = "\n".join([
        "import reshape.accounting, reshape",
        "snippets = " + repr(snippets),
        "for _ in range(2):",
        "    for s in snippets:",
        "        exec(compile(s, '<doc>', 'exec'), {})",
        "assert callable(reshape.count) and reshape.count.__module__ == 'reshape.accounting'",
    ])
    save_spec(tiny_spec, tmp_path / "spec.json")  # the files docs/spec.md's snippet opens: a spec
    save_timm(build(tiny_spec), tiny_spec, "fashion-mnist", tmp_path / "export" / "senet20k")  # and an export
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    # the README prints the ReLU count of its 4-stage width-16..128 BasicBlock net at 1x28x28:
    # stem 16*28*28 + 4 layers per stage of C*H*W: 16*28^2, 32*14^2, 64*7^2, 128*4^2
    relus = 16 * 784 + 4 * (16 * 784 + 32 * 196 + 64 * 49 + 128 * 16)
    assert done.stdout.split().count(str(relus)) == 2


def test_no_public_name_is_also_a_submodule() -> None:
    """A lazily exported name that equals a submodule's name is rebound to the module on import."""
    submodules = {m.name for m in pkgutil.iter_modules(reshape.__path__)}
    assert not submodules & set(reshape.__all__)
    for name in reshape.__all__:
        if name != "__version__":
            importlib.import_module(reshape._API[name])
            assert not isinstance(getattr(reshape, name), type(reshape)), name


def test_every_repository_path_architecture_md_names_exists() -> None:
    """docs/architecture.md is where a newcomer starts: a file it names must be there (issue 24;
    it once presented a method file that did not exist). Examples name ``<name>`` placeholders."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:reshape|cli|tests|benchmarks|docs|scripts|search_spaces|recipes)/[\w./*-]+)`", text))
    assert len(named) > 10  # the check reads the document's paths, not nothing
    missing = [p for p in sorted(named) if not (list(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())]
    assert not missing, missing
