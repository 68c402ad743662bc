"""The public API works as documented: the Python snippets of README.md and docs/ run verbatim.

The snippets are read from the documents (never copied here), so a doc edit that breaks
them fails this test. They run in a fresh interpreter, twice in one process and after
importing the accounting module first: ``reshape.count`` once became a submodule that
shadowed the function ``reshape.count`` (issue 14).

docs/architecture.md is checked whole (issue 24): every block it shows runs or is checked
against pyproject.toml, and every path and dotted name it gives exists.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


# -- docs/architecture.md: every block it shows runs or is checked (issue 24, item 7) ----------
ARCHITECTURE = ROOT / "docs" / "architecture.md"
#: The files the blocks open, as the reader has them: ``reshape count spec.json`` counts a spec.
BLOCK_INPUTS = {"spec.json": "tiny_spec"}


def code_blocks(doc: Path) -> list[tuple[int, str, str]]:
    """(line of the opening fence, language, body) of every fenced block of ``doc``."""
    blocks, lines = [], doc.read_text().splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            if start is None:
                start, lang = number, line[3:].strip()
            else:
                blocks.append((start, lang, "\n".join(lines[start:number - 1]) + "\n"))
                start = None
    assert start is None, f"{doc.name} line {start}: a fence that is never closed"
    return blocks


def layer_diagram(body: str) -> list[list[str]]:
    """The layers a ```text diagram shows, top down: lines `` reshape.a | reshape.b   what``
    (continuation lines, which describe, start with more spaces)."""
    layers = []
    for line in body.splitlines():
        m = re.match(r"^ (reshape\.\w+(?: \| reshape\.\w+)*)(?:\s{2,}\S.*)?$", line)
        if m:
            layers.append([name.removeprefix("reshape.") for name in m[1].split(" | ")])
        else:
            assert not line.startswith(" reshape"), f"a layer line the diagram's format does not allow: {line!r}"
    return layers


def check_text(body: str) -> None:
    """A ```text block is the layer diagram: the layers of pyproject.toml's contract, in its order."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    contract = [[name.strip() for name in layer.split("|")]
                for layer in next(c for c in config if c["id"] == "layers")["layers"]]
    shown = layer_diagram(body)
    assert shown, "a text block that is not a layer diagram: the test has no check for it"
    flat_shown = [n for layer in shown for n in layer]
    flat_contract = [n for layer in contract for n in layer]
    assert sorted(flat_shown) == sorted(set(flat_shown)), "a layer shown twice"
    extra, absent = set(flat_shown) - set(flat_contract), set(flat_contract) - set(flat_shown)
    assert not extra, f"shown, not in the contract: {extra}"
    assert not absent, f"in the contract, not shown: {absent}"
    assert [sorted(l) for l in shown] == [sorted(l) for l in contract], \
        f"the layers differ in order or grouping:\n  shown    {shown}\n  contract {contract}"


def check_python(body: str, line: int, tmp: Path, added: list[str]) -> None:
    """A ```python block runs in a namespace of its own. One that registers a method is the
    file a newcomer adds as ``reshape/methods/<name>.py``: it is written to a folder of the
    package's path and found by ``discover()`` as a file dropped into the package is (nothing
    else edited), and must register a baseline by that name."""
    import reshape.methods as methods

    added_here = re.search(r'@register_method\("(\w+)"', body)
    if added_here is None:
        exec(compile(body, f"{ARCHITECTURE}:{line}", "exec"), {"__name__": "__main__"})
        return
    name = added_here[1]
    assert name not in methods.list_methods(), f"the example method '{name}' is shipped: it is no longer an example"
    folder = tmp / "added"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(body)
    methods.__path__.append(str(folder))
    try:
        found = methods.discover()
    finally:
        methods.__path__.remove(str(folder))
    added.extend(found)
    assert found == [name] and methods.list_methods()[-1] == name and methods.get_method(name).family == "baseline"


def check_console(body: str, line: int) -> None:
    """Each ``$`` line of a ```console block runs as written: ``reshape ...`` in-process
    (CliRunner), ``python SCRIPT`` (any python) as a subprocess from the repository root."""
    import os
    import shlex

    from click.testing import CliRunner

    from reshape.cli import cli

    commands = [l[2:] for l in body.splitlines() if l.startswith("$ ")]
    assert commands, "a console block without a `$ ` command"
    for command in commands:
        words = shlex.split(command, comments=True)
        env = {}
        while "=" in words[0]:
            key, value = words.pop(0).split("=", 1)
            env[key] = value
        if words[0] == "reshape":
            res = CliRunner().invoke(cli, words[1:], env=env)
            assert res.exit_code == 0, f"`{command}` exited {res.exit_code}: {res.output[-1500:]}"
        elif Path(words[0]).name == "python":
            script = ROOT / words[1]
            assert script.is_file(), f"`{command}`: no script {words[1]}"
            done = subprocess.run([sys.executable, str(script), *words[2:]], cwd=ROOT, capture_output=True,
                                  text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1", **env})
            assert done.returncode == 0, f"`{command}` exited {done.returncode}: {(done.stdout + done.stderr)[-1500:]}"
        else:
            raise AssertionError(f"`{command}`: the test knows no way to run this command")


def test_every_block_architecture_md_shows_runs(tmp_path: Path, tiny_spec, monkeypatch) -> None:
    """The blocks run in order in one folder, as a reader would: the method file a newcomer adds,
    its teacher, its fit; the console commands; the layer diagram against pyproject.toml. A
    failure names the block's line. Then the prose on the example method holds: its folder
    records what the doc says, a second call reads it back, another stride is refused."""
    from reshape.errors import OwnershipError
    from reshape.methods import Setting, get_method
    from reshape.methods._registry import _REGISTRY
    from reshape.runs import RunDir

    text = ARCHITECTURE.read_text()
    blocks = code_blocks(ARCHITECTURE)
    assert {lang for _, lang, _ in blocks} == {"text", "python", "console"}, [lang for _, lang, _ in blocks]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    inputs = {"tiny_spec": tiny_spec}
    for file, fixture in BLOCK_INPUTS.items():
        save_spec(inputs[fixture], work / file)
    added: list[str] = []
    try:
        for line, lang, body in blocks:
            try:
                if lang == "text":
                    check_text(body)
                elif lang == "python":
                    check_python(body, line, tmp_path, added)
                elif lang == "console":
                    check_console(body, line)
                else:
                    raise AssertionError(f"no check for a ```{lang} block: make it python, console or text")
            except Exception as exc:
                pytest.fail(f"docs/architecture.md line {line} (```{lang}): {type(exc).__name__}: {exc}")
        assert added == ["stem_stride"], added  # the doc's walk-through adds one method
        # the prose after the walk-through: what the folder records, a read-back, a refusal
        fit_block = next(b for _, lang, b in blocks if lang == "python" and ".fit(" in b)
        teacher, budget, out = re.search(r'\.fit\("([^"]+)", ([\d_]+), "([^"]+)"', fit_block).groups()
        setting = eval(re.search(r"setting = (Setting\(.*\))", fit_block)[1], {"Setting": Setting})
        manifest = RunDir(out).manifest()
        assert manifest.method == "stem_stride" and manifest.status == "done"
        assert set(manifest.params) == {"params", "budget", "teacher", "setting"}, manifest.params
        method = get_method("stem_stride")
        again = method.fit(teacher, int(budget), out, setting, method.params(stride=2))
        assert again.cached and again.within_budget and again.built["stride"] == 2
        refusal = re.search(r"into the same folder is refused \(`([^`]+)`\)", text)[1]
        with pytest.raises(OwnershipError, match=re.escape(refusal)):
            method.fit(teacher, int(budget), out, setting, method.params(stride=4))
    finally:
        for name in added:
            _REGISTRY.pop(name, None)
            sys.modules.pop(f"reshape.methods.{name}", None)


def test_every_dotted_name_architecture_md_names_exists() -> None:
    """A `reshape.module.name` the doc names imports and has that attribute (``reshape.pkg._name``
    is the doc's placeholder for any package)."""
    text = ARCHITECTURE.read_text()
    absent, missing = object(), []
    for dotted in sorted(set(re.findall(r"`(reshape(?:\.\w+)+)", text))):
        parts = dotted.split(".")
        if parts[1] == "pkg":
            continue
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        for part in parts[i:]:
            obj = getattr(obj, part, absent)
        if obj is absent:
            missing.append(dotted)
    assert not missing, missing
