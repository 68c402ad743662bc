"""Bad-input matrix: every ``reshape`` command, each with at least three bad inputs.

Each case runs in-process (click's CliRunner) against one small world built once: a tiny
trained run, a file and a folder to misuse, non-UTF-8 and out-of-range inputs. A case
passes ("clean") when the command

* exits with the code of the rule in docs/architecture.md: 2 when a value on the command
  line is wrong by itself, 1 when what it points to is (a file's contents, a run's state,
  a combination that does not fit, memory);
* prints no traceback and raises nothing but ``SystemExit``;
* names the bad thing in its message (the option, value or path);
* leaves the world unchanged: no file written, changed or created, in the runs or elsewhere.

Nothing trains: every case fails before any work. The totals for docs/results.md:

    python tests/test_bad_input_matrix.py --summary       # or --json
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":  # as a script, the conftest's thread settings must come before torch
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from click.testing import CliRunner

from reshape.cli import COMMANDS, cli

DATA = "fashion-mnist-mini"
USAGE, STATE = 2, 1


@dataclass(frozen=True)
class Case:
    """One bad input: ``args`` after the command name ({name} fills in a path of the world),
    the expected exit code and the text the message must contain to name what is wrong."""

    command: str
    args: tuple[str, ...]
    code: int
    names: str

    @property
    def id(self) -> str:
        return f"{self.command} {' '.join(self.args)}"


def case(command: str, args: str, code: int, names: str) -> Case:
    return Case(command, tuple(args.split()), code, names)


#: Arguments every method command needs besides the bad one.
M = f"{{teacher}} --data {DATA}"

CASES: list[Case] = [
    case("demo", "--out {afile}", USAGE, "afile' is a file"),
    case("demo", "--out /proc/reshape-demo", USAGE, "/proc"),
    case("demo", "--out {afile}/x", USAGE, "afile is a file, not a folder"),
    case("demo", "--quick --epochs 3", USAGE, "--epochs"),

    case("count", "resnt18", STATE, "resnt18"),
    case("count", "{latin1_spec}", STATE, "latin1.json is not UTF-8 text"),
    case("count", "{broken_spec}", STATE, "broken.json is not valid JSON"),
    case("count", "resnet18 --input-size 0", USAGE, "--input-size"),
    case("count", "resnet18 --costs {missing}.json", USAGE, "missing.json"),

    case("graph", "resnet18 --leaf no_such_module", STATE, "no_such_module"),
    case("graph", "{latin1_spec}", STATE, "not UTF-8 text"),
    case("graph", "resnet18 --dataset svhn", USAGE, "svhn"),
    case("graph", "resnet18 --input-size -3", USAGE, "--input-size"),

    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 0", USAGE, "--relus"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 1000G", STATE,
         "a network this large cannot be built"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 12x", USAGE, "12x"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 100k --out /proc/hrn.json", USAGE, "/proc"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 100k --out {adir}", USAGE, "adir' is a directory"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --sweep 50k --out {afile}", USAGE, "afile' is a file"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --sweep , --out {new}", USAGE, "--sweep"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 100k --criticality-file {latin1_spec}",
         STATE, "not UTF-8 text"),

    case("criticality", f"resnet18 --data {DATA} --width 4 --out /proc/crit.json --cache {{new}}", USAGE, "/proc"),
    case("criticality", f"resnet18 --data {DATA} --width 4 --out {{adir}} --cache {{new}}", USAGE, "adir' is a directory"),
    case("criticality", f"resnet18 --data {DATA} --width 4 --cache {{afile}}", USAGE, "afile' is a file"),
    case("criticality", f"resnet18 --data {DATA} --width 0 --cache {{new}}", USAGE, "--width"),
    case("criticality", "resnet18 --data nodata --cache {new}", USAGE, "nodata"),

    case("train", f"resnet18 --data {DATA} --width 0 --out {{new}}", USAGE, "--width"),
    case("train", f"resnet18 --data {DATA} --width 4 --epochs 0 --out {{new}}", USAGE, "--epochs"),
    case("train", f"resnet18 --data {DATA} --width 4 --out {{afile}}", USAGE, "afile' is a file"),
    case("train", f"resnet18 --data {DATA} --width 4 --out /proc/run", USAGE, "/proc"),
    case("train", f"{{huge_spec}} --data {DATA} --out {{new}}", STATE, "not enough memory to build huge"),
    case("train", f"{{latin1_spec}} --data {DATA} --out {{new}}", STATE, "not UTF-8 text"),
    case("train", f"resnet18 --data {DATA} --teacher {{missing}} --out {{new}}", USAGE, "missing"),
    case("train", f"resnet18 --data {DATA} --width 4 --lr 0 --out {{new}}", USAGE, "--lr"),

    case("eval", "{teacher} --batch-size 0", USAGE, "--batch-size"),
    case("eval", "{missing}", USAGE, "missing"),
    case("eval", "{afile}", USAGE, "afile"),
    case("eval", "{adir}", STATE, "adir"),
    case("eval", "{teacher} --data nodata", USAGE, "nodata"),

    case("sensitivity", f"{M} --budget 0", USAGE, "--budget"),
    case("sensitivity", f"{M} --budget 10x", USAGE, "10x"),
    case("sensitivity", f"{M} --ranking a,b", USAGE, "--ranking"),
    case("sensitivity", f"{{adir}} --data {DATA}", STATE, "adir"),

    case("senet", f"{M} --budget 0 --out {{new}}", USAGE, "--budget"),
    case("senet", f"{M} --budget 2k --out {{afile}}", USAGE, "afile' is a file"),
    case("senet", f"{M} --budget 2k --out /proc/senet", USAGE, "/proc"),
    case("senet", f"{M} --budget 2k --at-weight -1 --out {{new}}", USAGE, "--at-weight"),
    case("senet", f"{M} --budget 2k --kd-weight 2 --out {{new}}", USAGE, "--kd-weight"),
    case("senet", f"{M} --budget 10M --out {{new}}", STATE, "exceeds the teacher's"),

    case("snl", f"{M} --budget 2k --lambda -1 --out {{new}}", USAGE, "--lambda"),
    case("snl", f"{M} --budget 2k --lambda-growth 0 --out {{new}}", USAGE, "--lambda-growth"),
    case("snl", f"{M} --budget 2k --mask-epochs 0 --out {{new}}", USAGE, "--mask-epochs"),
    case("snl", f"{M} --budget 2k --out {{afile}}", USAGE, "afile' is a file"),

    case("shallow", f"{M} --relus 1.5 --out {{new}}", USAGE, "'1.5' is neither a count"),
    case("shallow", f"{M} --relus 0 --out {{new}}", USAGE, "--relus"),
    case("shallow", f"{M} --relus 1.0 --out {{new}}", STATE, "already meets the targets"),
    case("shallow", f"{M} --relus 0.7 --out /proc/shallow", USAGE, "/proc"),
    case("shallow", f"{M} --relus 0.7 --k 0 --out {{new}}", USAGE, "--k"),

    case("search", f"--space hybrenet --data {DATA} --budgets , --trials 1 --storage journal:{{new}}.log "
                   "--study s --out {new}", USAGE, "--budgets"),
    case("search", f"--space hybrenet --data {DATA} --budgets 10k --trials 0 --storage journal:{{new}}.log "
                   "--study s --out {new}", USAGE, "--trials"),
    case("search", f"--space {{latin1_spec}} --data {DATA} --budgets 10k --trials 1 --storage journal:{{new}}.log "
                   "--study s --out {new}", STATE, "not UTF-8 text"),
    case("search", f"--space hybrenet --data {DATA} --budgets 10k --trials 1 --storage journal:{{new}}.log "
                   "--study s --out {afile}", USAGE, "afile' is a file"),

    case("methods", "--bogus", USAGE, "--bogus"),
    case("methods", "senet", USAGE, "senet"),
    case("methods", "--json=yes", USAGE, "--json"),

    case("frontier", "{teacher} --methods width --budgets , --epochs 1 --out {new}", USAGE, "--budgets"),
    case("frontier", "{teacher} --methods width --budgets 1.5 --epochs 1 --out {new}", USAGE, "1.5"),
    case("frontier", "{teacher} --methods nosuch --budgets 10% --epochs 1 --out {new}", USAGE, "nosuch"),
    case("frontier", "{teacher} --methods senet --budgets 10% --epochs 1 --set senet.nope=1 --out {new}",
         USAGE, "nope"),
    case("frontier", "{teacher} --methods width --budgets 10% --epochs 0 --out {new}", USAGE, "--epochs"),
    case("frontier", "{teacher} --methods width --budgets 10% --epochs 1 --out {afile}", USAGE, "afile' is a file"),
    case("frontier", "{adir} --methods width --budgets 10% --epochs 1 --out {new}", STATE, "adir"),

    case("pareto", "{top1_150} --dataset cifar10", STATE, "top1 must be a percentage"),
    case("pareto", "{relus_negative} --dataset cifar10", STATE, "relus must be a whole number >= 0"),
    case("pareto", "{latin1_csv} --dataset cifar10", STATE, "latin1.csv is not UTF-8 text"),
    case("pareto", f"{{teacher}} --dataset {DATA} --out /proc/front.png", USAGE, "/proc"),
    case("pareto", f"{{teacher}} --dataset {DATA} --out {{png_dir}}", USAGE, "is a directory"),

    case("export", "{teacher} --out {new} --timm-config --dataset cifar100", STATE, "3 channels"),
    case("export", "{teacher} --out {afile}", USAGE, "afile' is a file"),
    case("export", "{teacher} --out /proc/export", USAGE, "/proc"),
    case("export", "{missing} --out {new}", USAGE, "missing"),
    case("export", "{teacher} --out {new} --dataset nodata", USAGE, "nodata"),

    case("measure", "{missing} --protocol semi2k", USAGE, "missing"),
    case("measure", "{teacher} --protocol bogus", USAGE, "bogus"),
    case("measure", "{teacher} --protocol semi2k --out {afile}", USAGE, "afile' is a file"),
]


# -- the world the cases run against ------------------------------------------------------------


def make_world(root: Path) -> dict[str, str]:
    """A tiny trained run and the misused files of the cases, as the {names} they fill in."""
    from reshape.methods import Setting, setting_config, setting_splits
    from reshape.models import spec_for
    from reshape.train import fit

    setting = Setting(DATA, limit=128, epochs=1, batch_size=64, progress=False)
    teacher = root / "teacher"
    spec = spec_for("resnet18", DATA, 4)
    fit(teacher, spec, setting_config(setting, 1, 0.1), setting_splits(setting), progress=False)
    (root / "afile").write_text("not a folder\n")
    (root / "adir").mkdir()
    (root / "front.png").mkdir()
    (root / "latin1.json").write_bytes('{"name": "caf\u00e9"}'.encode("latin-1"))
    (root / "broken.json").write_text('{"block": "basic",')
    huge = spec.to_dict()
    huge["stages"][0]["width"], huge["name"] = 60_000, "huge"
    (root / "huge.json").write_text(json.dumps(huge))
    (root / "top1.csv").write_text("method,relus,top1\nours,1000,150\n")
    (root / "relus.csv").write_text("method,relus,top1\nours,-5,50\n")
    (root / "latin1.csv").write_bytes("method,relus,top1\ncaf\u00e9,1000,50\n".encode("latin-1"))
    names = {"teacher": teacher, "afile": root / "afile", "adir": root / "adir", "png_dir": root / "front.png",
             "latin1_spec": root / "latin1.json", "broken_spec": root / "broken.json", "huge_spec": root / "huge.json",
             "top1_150": root / "top1.csv", "relus_negative": root / "relus.csv", "latin1_csv": root / "latin1.csv",
             "new": root / "new", "missing": root / "missing"}
    return {k: str(v) for k, v in names.items()}


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with the hash of its contents (folders as ``dir``; a FIFO or
    socket by its kind: reading a FIFO would block)."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else f"special {stat.S_IFMT(p.stat().st_mode):o}" for p in sorted(root.rglob("*"))}


def check(c: Case, world: dict[str, str], root: Path) -> list[str]:
    """What is wrong with how the command took this bad input (empty: it was clean)."""
    before = tree(root)
    args = [c.command, *(a.format(**world) for a in c.args)]
    res = CliRunner().invoke(cli, args, env={"RESHAPE_DEBUG": None, "RESHAPE_CACHE": str(root / "cache")})
    out = res.output
    problems = []
    if "Traceback" in out or (res.exception is not None and not isinstance(res.exception, SystemExit)):
        problems.append(f"traceback ({type(res.exception).__name__}: {res.exception})")
    if res.exit_code != c.code:
        problems.append(f"exit code {res.exit_code}, expected {c.code}")
    if c.names.format(**world) not in out:
        problems.append(f"message does not name {c.names!r}")
    if tree(root) != before:
        problems.append("it wrote or changed files")
    return [f"{p}; output: {out.strip()[-300:]!r}" for p in problems]


# -- pytest ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    return root, make_world(root)


def test_every_command_has_at_least_three_bad_inputs():
    per_command = {name: sum(c.command == name for c in CASES) for name in COMMANDS}
    assert min(per_command.values()) >= 3, per_command


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(c, world):
    root, names = world
    assert check(c, names, root) == []


# -- the totals, as a script ----------------------------------------------------------------------


def summary(root: Path) -> dict[str, object]:
    """Run every case once; the totals and the cases that were not clean."""
    world = make_world(root)
    failures = {c.id: problems for c in CASES if (problems := check(c, world, root))}
    return {"commands": len({c.command for c in CASES}), "tried": len(CASES), "clean": len(CASES) - len(failures),
            "usage_exit_2": sum(c.code == USAGE for c in CASES), "state_exit_1": sum(c.code == STATE for c in CASES),
            "failures": failures}


def main(argv: list[str]) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="reshape-matrix-") as tmp:
        result = summary(Path(tmp))
    if "--json" in argv:
        print(json.dumps(result, indent=2))
    else:
        print(f"bad-input matrix: {result['tried']} bad inputs over {result['commands']} commands, "
              f"{result['clean']} clean ({result['usage_exit_2']} expect exit 2, {result['state_exit_1']} exit 1)")
        for name, problems in result["failures"].items():  # type: ignore[union-attr]
            print(f"NOT CLEAN: reshape {name}: {' | '.join(problems)}")
    return 0 if result["clean"] == result["tried"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
