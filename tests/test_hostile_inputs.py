"""Issue 23: a hostile but realistic user. Special files as outputs, ``--force`` over what a
command does not own, two identical writers at once, non-finite and empty values, a planted
backend, spec bombs, malformed frontier results, read-back without write permission and
concurrent first starts on a fresh PostgreSQL database.

Each refusal is checked the way ``test_bad_input_matrix.py`` checks one (``check``): the
exit code of the rule, no traceback, the bad thing named, nothing written or changed. The
cases that need a refusal and nothing else are in ``CASES`` (they run in the matrix's world
and count in its totals, ``python tests/test_hostile_inputs.py --summary``); the others
need a setting of their own and are tests below.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

if __name__ == "__main__":  # as a script, the conftest's thread settings must come before torch
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from click.testing import CliRunner

from reshape.cli import cli
from test_bad_input_matrix import DATA, STATE, USAGE, Case, case, check, make_world, tree
from test_search import space_file  # noqa: F401  (the tiny search space, as a fixture)

M = f"{{teacher}} --data {DATA}"
SWEEP = "--backbone resnet18 --dataset cifar100"

#: Refusals that need only the world (extended below by ``hostile_world``).
CASES: list[Case] = [
    # outputs that are devices, FIFOs or sockets: refused before any work, the file left as it is
    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 100k --out {fifo}", USAGE, "is a FIFO"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 100k --out {sock}", USAGE, "is a socket"),
    case("pareto", f"{{teacher}} --dataset {DATA} --out {{fifo}}", USAGE, "is a FIFO"),
    case("criticality", f"resnet18 --data {DATA} --width 4 --out {{fifo}} --cache {{new}}", USAGE, "is a FIFO"),
    case("measure", "{teacher} --protocol semi2k --out {fifo}", USAGE, "is a FIFO"),
    case("search", f"--space hybrenet --data {DATA} --budgets 10k --trials 1 --storage journal:{{fifo}} "
                   "--study s --out {new}", STATE, "is a FIFO"),
    case("search", f"--space hybrenet --data {DATA} --budgets 10k --trials 1 --storage journal:{{notes}} "
                   "--study s --out {new}", STATE, "is not an Optuna journal"),

    # --force: never another command's run, never what it did not write, never an input's folder
    case("train", f"resnet18 --data {DATA} --width 4 --out {{teacher_with_notes}} --force", STATE, "notes.txt"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --sweep 50k --out {teacher} --force", STATE,
         "'train' run, not 'synthesize'"),
    case("export", "{teacher} --out {older_run} --force", STATE, "no run.json"),
    case("demo", "--quick --out {adir_with_notes} --force", STATE, "not a reshape run of 'demo'"),
    case("frontier", "{teacher} --methods width --budgets 10% --epochs 1 --limit 128 --out {frontier_with_notes} --force",
         STATE, "notes.txt"),
    case("train", f"resnet18 --data {DATA} --width 4 --teacher {{teacher}} --out {{teacher}} --force", STATE,
         "is the folder of the input"),
    case("train", f"resnet18 --data {DATA} --width 4 --teacher {{teacher}} --out {{teacher_link}} --force", STATE,
         "is the folder of the input"),
    case("train", f"resnet18 --data {DATA} --width 4 --teacher {{teacher}} --out {{teacher_dotdot}} --force",
         STATE, "is the folder of the input"),
    case("train", f"{{teacher}}/spec.json --data {DATA} --out {{teacher}} --force", STATE,
         "is the folder of the input"),
    case("senet", f"{M} --budget 2k --out {{teacher_link}} --force", STATE, "teacher's run directory"),
    case("frontier", "{teacher} --methods width --budgets 10% --epochs 1 --limit 128 --out {root} --force", STATE,
         "is the folder of the input"),
    case("synthesize", f"{SWEEP} --sweep 50k --criticality-file {{sweep}}/crit.json --out {{sweep}} --force",
         STATE, "is the folder of the input"),

    # non-finite, out-of-range and empty values: the CLI and the params refuse them alike
    case("senet", f"{M} --budget 2k --at-weight nan --out {{new}}", USAGE, "--at-weight"),
    case("senet", f"{M} --budget 2k --ce-weight inf --out {{new}}", USAGE, "--ce-weight"),
    case("snl", f"{M} --budget 2k --lambda-growth inf --out {{new}}", USAGE, "--lambda-growth"),
    case("snl", f"{M} --budget 2k --lambda nan --out {{new}}", USAGE, "--lambda"),
    case("train", f"resnet18 --data {DATA} --width 4 --lr inf --out {{new}}", USAGE, "--lr"),
    case("train", f"resnet18 --data {DATA} --width 4 --weight-decay -inf --out {{new}}", USAGE, "--weight-decay"),
    case("frontier", "{teacher} --methods width --budgets 10% --epochs 1 --set width.lr=inf --out {new}",
         USAGE, "width lr must be a finite number > 0"),
    case("frontier", "{teacher} --methods width --budgets 10% --epochs 1 --set width.lr=nan --out {new}",
         USAGE, "width lr"),
    case("frontier", "{teacher} --methods hybrenet_senet --budgets 10% --epochs 2 --set hybrenet_senet.factor=0 "
                     "--out {new}", USAGE, "factor must be a finite number > 0"),
    case("frontier", "{teacher} --methods shallow_senet --budgets 10% --epochs 2 --set shallow_senet.keep=-1 "
                     "--out {new}", USAGE, "keep must be a finite number in (0, 1]"),
    case("frontier", "{teacher} --methods senet --budgets 10% --epochs 2 --set senet.at_weight=inf --out {new}",
         USAGE, "at_weight"),
    case("search", f"--space hybrenet --data {DATA} --budgets 10k --trials 1 --storage journal:{{new}}.log "
                   "--study {empty} --out {new}", USAGE, "--study"),
    case("synthesize", "--backbone resnet18 --dataset cifar100 --relus 100k --criticality {empty}", USAGE,
         "--criticality"),
    case("train", f"resnet18 --data {DATA} --width 4 --device {{blank}} --out {{new}}", USAGE, "--device"),

    # spec bombs: bounded before anything is built, one line each
    case("count", "{wide_spec}", STATE, "spec.stages[0].width: must be at most"),
    case("train", f"{{wide_spec}} --data {DATA} --out {{new}}", STATE, "spec.stages[0].width: must be at most"),
    case("graph", "{deep_spec}", STATE, "spec.stages[0].depth: must be at most"),
    case("train", f"{{deep_spec}} --data {DATA} --out {{new}}", STATE, "spec.stages[0].depth: must be at most"),
    case("count", "{nested_spec}", STATE, "nested too deeply"),
    case("count", "{classes_spec}", STATE, "spec.num_classes: must be at most"),

    # malformed frontier results
    case("pareto", "{frontier_empty_results} --dataset fashion-mnist-mini", STATE, "is not a frontier's results"),
    case("pareto", "{frontier_bad_rows} --dataset fashion-mnist-mini", STATE, "is not a frontier's results"),
]

def hostile_world(root: Path) -> dict[str, str]:
    """The matrix's world plus special files, folders a command does not own and spec bombs."""
    import shutil

    from reshape.methods.criticality import Criticality

    world = make_world(root)
    teacher = Path(world["teacher"])
    os.mkfifo(root / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))  # the file stays after the socket closes
    sock.close()
    (root / "notes").write_text("my notes, not an Optuna journal\n")
    noted = root / "teacher-with-notes"
    shutil.copytree(teacher, noted)
    (noted / "notes.txt").write_text("mine\n")
    older = root / "older-run"  # a run of an older reshape: no run.json
    older.mkdir()
    shutil.copy(teacher / "spec.json", older / "spec.json")
    (root / "adir-with-notes").mkdir()
    (root / "adir-with-notes" / "notes.txt").write_text("mine\n")
    for name, results in (("frontier-with-notes", None), ("frontier-empty", {}), ("frontier-bad-rows", {"rows": [1]})):
        folder = root / name
        folder.mkdir()
        (folder / "frontier.json").write_text(json.dumps({"format": "reshape.frontier", "methods": ["width"]}))
        if results is None:
            (folder / "notes.txt").write_text("mine\n")
        else:
            (folder / "results.json").write_text(json.dumps(results))
    (root / "teacher-link").symlink_to(teacher)
    sweep = root / "sweep"
    assert CliRunner().invoke(cli, ["synthesize", *SWEEP.split(), "--sweep", "50k", "--out", str(sweep)]).exit_code == 0
    crit = Criticality("resnet18", "cifar100", None, None, {}, 0.5, 0.1, (0.2, 0.3, 0.25, 0.4), 1000,
                       (100, 200, 300, 400))
    (sweep / "crit.json").write_text(json.dumps(crit.to_dict()))
    spec = json.loads((teacher / "spec.json").read_text())
    for name, change in (("wide", ("stages", 0, "width", 10**30)), ("deep", ("stages", 0, "depth", 100_000)),
                         ("classes", (None, None, "num_classes", 10**30))):
        bomb = json.loads(json.dumps(spec))
        target = bomb[change[0]][change[1]] if change[0] else bomb
        target[change[2]] = change[3]
        (root / f"{name}.json").write_text(json.dumps(bomb))
    (root / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    return {**world, "root": str(root), "empty": "", "blank": " ", "fifo": str(root / "fifo"),
            "sock": str(root / "sock"),
            "notes": str(root / "notes"), "teacher_with_notes": str(noted), "older_run": str(older),
            "adir_with_notes": str(root / "adir-with-notes"), "frontier_with_notes": str(root / "frontier-with-notes"),
            "frontier_empty_results": str(root / "frontier-empty"),
            "frontier_bad_rows": str(root / "frontier-bad-rows"),
            "teacher_link": str(root / "teacher-link"), "teacher_dotdot": f"{teacher}/../{teacher.name}",
            "sweep": str(sweep), "wide_spec": str(root / "wide.json"), "deep_spec": str(root / "deep.json"),
            "classes_spec": str(root / "classes.json"), "nested_spec": str(root / "nested.json")}


def hostile_check(c: Case, world: dict[str, str], root: Path) -> list[str]:
    """``check`` for a case, and special files left special."""
    problems = check(c, world, root)
    if not stat.S_ISFIFO(os.stat(world["fifo"]).st_mode) or not stat.S_ISSOCK(os.stat(world["sock"]).st_mode):
        problems.append("a FIFO or socket was replaced by a file")
    return problems


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return root, hostile_world(root)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_cleanly(c, world):
    root, names = world
    assert hostile_check(c, names, root) == []


# -- the library refuses what the CLI refuses ------------------------------------------------------
@pytest.mark.parametrize("method, overrides, message", [
    ("senet", {"at_weight": float("nan")}, "SENet at_weight must be a finite number >= 0, got nan"),
    ("senet", {"kd_weight": "inf"}, "SENet kd_weight must be a finite number in [0, 1], got inf"),
    ("snl", {"growth": float("inf")}, "SNL growth must be a finite number >= 1, got inf"),
    ("snl", {"lam": "nan"}, "SNL lam must be a finite number >= 0"),
    ("width", {"lr": "-inf"}, "width lr must be a finite number > 0"),
    ("hybrenet_senet", {"factor": 0}, "hybrenet base factor must be a finite number > 0"),
    ("hybrenet_senet", {"senet.at_weight": "nan"}, "SENet at_weight"),
    ("shallow_senet", {"keep": -1.0}, "shallow_senet keep must be a finite number in (0, 1]"),
    ("shallow", {"lr": float("inf")}, "shallow lr"),
    ("deepreduce", {"lr": 0}, "deepreduce lr must be a finite number > 0"),
])
def test_params_refuse_non_finite_and_out_of_range_values(method, overrides, message):
    from reshape.errors import ReshapeError
    from reshape.methods import get_method

    with pytest.raises(ReshapeError) as err:
        get_method(method).params(**overrides)
    assert message in str(err.value)


def test_a_training_config_and_setting_refuse_non_finite_values():
    from reshape.errors import ReshapeError
    from reshape.methods import Setting
    from reshape.train import TrainConfig

    for field, value in (("lr", float("inf")), ("momentum", float("nan")), ("kd_temperature", float("inf")),
                         ("gamma", float("nan")), ("milestones", (0.5, float("nan")))):
        with pytest.raises(ReshapeError, match=f"training config {field}"):
            TrainConfig(**{field: value})
    with pytest.raises(ReshapeError, match="setting kd_alpha must be a finite number in"):
        Setting(DATA, kd_alpha=float("nan"))


def test_output_never_replaces_a_special_file(tmp_path):
    from reshape.errors import ReshapeError
    from reshape.io import write_text

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ReshapeError, match="is a FIFO"):
        write_text(tmp_path / "fifo", "x")
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


# -- --force keeps what it does not own ------------------------------------------------------------
def test_force_replaces_its_own_run_and_keeps_its_stage_runs_ours(world, tmp_path):
    """Over a run of the same command holding only what reshape wrote (its lock included),
    --force starts over; a stage run below it (``method:stage``) counts as its own."""
    from reshape.io import LOCK_FILE
    from reshape.runs import RunDir

    root, names = world
    out = tmp_path / "run"
    args = ["train", "resnet18", "--data", DATA, "--width", "4", "--epochs", "1", "--limit", "64", "--out", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert RunDir(out).foreign("train") == [] and not (out / LOCK_FILE).exists()  # a finished run keeps no lock
    stage = out / "locate"
    stage.mkdir()
    (stage / "run.json").write_text((out / "run.json").read_text().replace('"method": "train"',
                                                                           '"method": "train:locate"'))
    (stage / "mine.txt").write_text("not reshape's\n")
    assert [p.name for p in RunDir(out).foreign("train")] == ["mine.txt"]  # a stage run is checked too
    (stage / "mine.txt").unlink()
    res = CliRunner().invoke(cli, [*args, "--seed", "1", "--force"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "run.json").read_text())["params"]["train"]["seed"] == 1 and not stage.exists()


# -- two identical writers ------------------------------------------------------------------------
TRAIN = ["-m", "reshape", "train", "resnet18", "--data", DATA, "--width", "4", "--epochs", "2", "--limit", "128",
         "--batch-size", "64"]


def test_two_identical_trainings_at_once_never_train_one_folder_twice(tmp_path):
    """Regression: two identical `reshape train ... --out X` started together both trained every
    epoch into X (metrics.jsonl held each epoch twice). Now one trains; the other is refused,
    naming the first, or (started after it finished) reads the run back."""
    out = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, *TRAIN, "--out", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2], outputs
    assert codes in ([0, 0], [0, 1]), outputs
    if codes == [0, 1]:
        refusal = next(o for p, o in zip(procs, outputs) if p.returncode == 1)
        assert "is being written by process" in refusal and socket.gethostname() in refusal, refusal
        assert "Traceback" not in refusal


def test_a_second_writer_is_refused_naming_the_holder(world, tmp_path):
    """A folder locked by another process (a frontier point, a trial, a run) is refused with the
    holder's pid and host, before anything is written; the holder's files are untouched."""
    root, names = world
    out = tmp_path / "point"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from reshape.io import lock_folder
        lock_folder({str(out)!r}); print("locked", flush=True); time.sleep(600)""")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree(tmp_path)
        res = CliRunner().invoke(cli, ["senet", names["teacher"], "--data", DATA, "--budget", "2k", "--out", str(out)])
        assert res.exit_code == 1 and f"is being written by process {holder.pid} on {socket.gethostname()}" \
            in res.output, res.output
        assert tree(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_refused_while_the_holder_names_itself_still_names_it(tmp_path):
    """Regression (CI): a second writer that tried the lock between the holder taking it and
    writing its name read an empty lock file and said "another process". The refusal waits
    briefly for the name."""
    import fcntl
    import threading

    from reshape.errors import OwnershipError
    from reshape.io import LOCK_FILE, lock_folder
    tmp_path.joinpath(LOCK_FILE).touch()
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, nameless: the holder's window
    timer = threading.Timer(0.2, os.write, (fd, b"process 4242 on elsewhere"))
    timer.start()
    try:
        with pytest.raises(OwnershipError, match="being written by process 4242 on elsewhere"):
            lock_folder(tmp_path)
    finally:
        timer.join()
        os.close(fd)


def test_a_shared_run_being_written_is_waited_for_and_read_back(tmp_path):
    """Regression (issue 26's benchmark): two search workers needed one HybReNet base in the
    study's shared/ folder; the second was refused (an OwnershipError ended its process) while
    the first trained it. A shared stage now waits for its writer, then reads the run back."""
    import time

    from reshape.errors import OwnershipError
    from reshape.io import LOCK_FILE
    from reshape.runs import RunDir

    out = tmp_path / "shared" / "base"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from reshape.runs import RunDir
        run = RunDir({str(out)!r}); run.claim("probe", {{"a": 1}}); print("locked", flush=True)
        time.sleep(1.0); run.finish({{"top1": 0.5}})""")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OwnershipError, match=f"being written by process {holder.pid}"):
            RunDir(out).claim("probe", {"a": 1})
        start = time.monotonic()
        manifest = RunDir(out).claim("probe", {"a": 1}, wait=True)
        assert time.monotonic() - start > 0.1
        assert manifest.status == "done" and manifest.summary == {"top1": 0.5}
        assert not (out / LOCK_FILE).exists()  # read back: this process holds no lock on it
    finally:
        holder.kill()
        holder.wait()


def test_a_methods_stage_in_the_shared_folder_waits_for_its_writer(tmp_path, monkeypatch):
    """``Job.train`` waits for a stage in ``Setting.shared`` (other workers' budgets and trials
    reuse it) and refuses at once elsewhere (a run of this job's own)."""
    import reshape.train
    from reshape.methods import Job
    from reshape.runs import RunDir
    from reshape.setting import Setting

    calls = []
    monkeypatch.setattr(reshape.train, "fit", lambda out, *args, **kwargs: calls.append((out, kwargs["wait"])))
    monkeypatch.setattr(Job, "data", None)
    shared = tmp_path / "shared"
    job = Job("m", None, 10, RunDir(tmp_path / "point"), Setting(data=DATA, shared=str(shared)), "f")
    job.train(None, None, out=job.shared_dir("base"))
    job.train(None, None, out=job.out / "masks")
    alone = Job("m", None, 10, RunDir(tmp_path / "alone"), Setting(data=DATA), "f")
    alone.train(None, None, out=alone.shared_dir("base"))
    assert calls == [(shared / "base", True), (job.out / "masks", False), (alone.out / "base", False)]


# -- the backend comes from the installation, never the working directory ---------------------------
def test_measure_never_runs_a_backend_planted_in_the_working_directory(world, tmp_path, monkeypatch):
    """Regression: `reshape measure` ran ./.venv-pi/bin/python from the working directory."""
    from reshape.measure import BACKEND_ENV, INSTALLED_BACKEND, backend_python

    root, names = world
    marker = tmp_path / "planted-ran"
    python = tmp_path / ".venv-pi" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\ntouch {marker}\n")
    python.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    if INSTALLED_BACKEND.is_file():
        assert backend_python() == INSTALLED_BACKEND
    else:
        res = CliRunner().invoke(cli, ["measure", names["teacher"], "--protocol", "semi2k",
                                       "--out", str(tmp_path / "m")])
        assert res.exit_code == 1 and "make pi-backend" in res.output, res.output
    assert not marker.exists()
    monkeypatch.setenv(BACKEND_ENV, str(tmp_path / "missing-python"))
    with pytest.raises(Exception, match=f"{BACKEND_ENV}=.*missing-python is not a file"):
        backend_python()


# -- read back without writing -----------------------------------------------------------------------
def test_a_finished_run_is_read_back_without_writing(tmp_path, monkeypatch):
    """Regression: reading back a finished run in a read-only folder failed. A read-back now
    takes no lock and writes nothing (root ignores permission bits, so writing is made to fail)."""
    import reshape.io
    import reshape.runs._manifest

    out = tmp_path / "run"
    args = ["train", "resnet18", "--data", DATA, "--width", "4", "--epochs", "1", "--limit", "64", "--out", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied (read-only folder)")

    for module in (reshape.io, reshape.runs._manifest):
        monkeypatch.setattr(module, "lock_folder", refuse)
    monkeypatch.setattr(reshape.io, "atomic_path", refuse)
    before = tree(out)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0 and "read back" in res.output, res.output
    assert tree(out) == before


# -- frontier results from any working directory ------------------------------------------------------
def test_a_frontier_is_read_from_any_working_directory(world, tmp_path, monkeypatch):
    """Regression: `reshape pareto FRONTIER` from another working directory failed: results.json
    stored the teacher's path relative to where the frontier ran. Every run is now stored
    relative to the frontier folder."""
    import shutil

    root, names = world
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(names["teacher"], work / "teacher")
    monkeypatch.chdir(work)
    res = CliRunner().invoke(cli, ["frontier", "teacher", "--methods", "width", "--budgets", "50%", "--epochs", "1",
                                   "--limit", "128", "--batch-size", "64", "--out", "front"])
    assert res.exit_code == 0, res.output
    saved = json.loads((work / "front" / "results.json").read_text())
    assert [r["run"] for r in saved["rows"]] == ["../teacher", "width/50pct/seed0"]
    assert saved["setting"]["teacher"] == "../teacher"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = CliRunner().invoke(cli, ["pareto", "../work/front", "--dataset", DATA, "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)) == 2  # the teacher and the point, both found from here


# -- a search trial skipped as over budget ------------------------------------------------------------
def test_a_trial_over_budget_records_no_run_dir(tmp_path, space_file):
    """Regression: a trial skipped as over budget (not trained) recorded a run_dir that was never made."""
    from test_search import search_args, study_of

    storage = f"journal:{tmp_path / 's.log'}"
    args = search_args(space_file, storage, tmp_path / "runs", 1)
    args[args.index("--budgets") + 1] = "1k"  # below every design of the space: none is trained
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    trial = study_of(storage).trials[0]
    assert trial.user_attrs["trained"] is False and trial.user_attrs["run_dir"] is None
    assert not any((tmp_path / "runs").glob("trial-*"))


# -- shared studies ------------------------------------------------------------------------------------
def test_a_frontier_study_is_named_after_its_folder(world, tmp_path):
    """Regression: `frontier --storage URL` with another --out trained nothing and recorded rows
    pointing into the first frontier's folders: the study name ignored --out."""
    from reshape.frontier import plan_frontier
    from reshape.methods import Setting

    root, names = world
    setting = Setting(DATA, limit=128, epochs=1, batch_size=64, progress=False)
    first, second = (plan_frontier(names["teacher"], ["width"], [0.5], setting, tmp_path / name)
                     for name in ("a", "b"))
    again = plan_frontier(names["teacher"], ["width"], [0.5], setting, tmp_path / "a")
    assert first.study_name != second.study_name and first.study_name == again.study_name


def _start_together(url: str, workers: int) -> list[BaseException | None]:
    """``workers`` threads open ``url`` and create one study at the same moment, each on its own
    connections (what a worker process does first); what each raised, or None."""
    import threading

    import optuna

    from reshape.search import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    barrier, errors = threading.Barrier(workers), [None] * workers

    def worker(i: int) -> None:
        barrier.wait()
        try:
            storage = open_storage(url)
            optuna.create_study(storage=storage, study_name="s", directions=["maximize"], load_if_exists=True)
            storage.engine.dispose()
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            errors[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return errors


# open_storage silences Optuna's heartbeat warning with catch_warnings, which is not thread-safe:
# between threads the filter can be restored under another's feet (processes never share it).
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_workers_starting_together_on_a_fresh_postgres_database(postgres_url):
    """Regression: workers started at the same moment on a fresh database crashed creating
    Optuna's tables (UniqueViolation on pg_type_typname_nsp_index, DuplicateObject) in about
    half the tries. Three fresh databases, six workers each (threads: the race is between
    database connections, and a process each would spend minutes importing torch), all start."""
    import psycopg

    base, _, _ = postgres_url.rpartition("/")
    for attempt in range(3):
        name = f"fresh_{os.getpid()}_{attempt}"
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        errors = _start_together(f"{base}/{name}", 6)
        assert errors == [None] * 6, [repr(e) for e in errors if e]


# -- the totals, as a script ------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="reshape-hostile-") as tmp:
        world = hostile_world(Path(tmp))
        failures = {c.id: p for c in CASES if (p := hostile_check(c, world, Path(tmp)))}
    result = {"commands": len({c.command for c in CASES}), "tried": len(CASES), "clean": len(CASES) - len(failures),
              "failures": failures}
    if "--json" in argv:
        print(json.dumps(result, indent=2))
    else:
        print(f"hostile inputs: {result['tried']} over {result['commands']} commands, {result['clean']} clean")
        for name, problems in failures.items():
            print(f"NOT CLEAN: reshape {name}: {' | '.join(problems)}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
