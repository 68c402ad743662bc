"""Run directories as a type: one layout, one manifest (``run.json``), one loader.

A run directory holds one network and how it was made:

* ``spec.json`` (the architecture), ``model.safetensors`` (weights and ReLU masks),
  ``graph.json`` for a network rewritten by graph passes (replayed on load);
* the trainer's ``train_config.json``, ``checkpoint.pt`` and ``metrics.jsonl``;
* ``run.json``, the manifest: which method wrote the run, every parameter that changes
  its result, their fingerprint, the parent run, the tool version, the status
  (``running`` / ``done``) and the final summary. A training in the run adds a
  ``training`` record of its own (fingerprint, status, last metrics), which is the
  small done marker that ``reshape.train.fit`` reads back instead of the checkpoint.

A run directory is owned: ``RunDir.claim`` refuses a folder that holds another
method's or another configuration's run, naming the parameters that differ, and
``force`` starts it over. Nothing guesses a run's method from its files.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from torch import nn

from ._version import __version__
from .errors import OwnershipError, ReshapeError
# canonical, differences and fingerprint live in reshape.io; they stay importable from here.
from .io import (LOCK_FILE, canonical, differences, fingerprint, is_bookkeeping, lock_folder, read_json,
                 remove_stale_temps, unlock_folder, write_bytes, write_json)
from .spec import ArchSpec, load_spec, save_spec

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.safetensors"
GRAPH_FILE = "graph.json"
MANIFEST_FILE = "run.json"
CONFIG_FILE = "train_config.json"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"

FORMAT = "reshape.run"
VERSION = 1
STATUSES = ("running", "done")
#: The files that make a folder a run directory written by some version of this tool.
RUN_MARKERS = (MANIFEST_FILE, SPEC_FILE, CHECKPOINT_FILE)
#: What any command may write into a run directory it owns (glob patterns): the layout and
#: measurements (``pi_<protocol>_<field>.json``); temporary files and the lock aside.
RUN_FILES = (MANIFEST_FILE, SPEC_FILE, WEIGHTS_FILE, GRAPH_FILE, CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE,
             "pi_*.json")
#: What each command writes into its folder beside ``RUN_FILES``, as ``writes`` registered it.
_WRITES: dict[str, tuple[str, ...]] = {}


def writes(method: str, *patterns: str) -> None:
    """Register the files (glob patterns) ``method`` writes into the folder it claims, beside
    the run layout: what a forced rerun (``force``) may delete there, and nothing else."""
    _WRITES[method] = (*_WRITES.get(method, ()), *patterns)


#: Methods registered as variants of another (``variant``), by name.
_VARIANT_OF: dict[str, str] = {}


def variant(name: str, of: str) -> None:
    """Register method ``name`` as a variant of ``of`` (one command, other defaults: ``reshape
    senet`` with a uniform allocation runs ``senet_uniform``): forcing either replaces the other's run."""
    _VARIANT_OF[name] = of


def written_by(method: str) -> tuple[str, ...]:
    """The files ``method`` registered with ``writes``."""
    return _WRITES.get(method, ())


def refuse_inputs(out: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]],
                  param: str = "out") -> None:
    """Refuse an output folder (the value of ``param``) that is an input's folder or holds an
    input (through symlinks and ``..``): writing there, or a forced rerun clearing it, would
    destroy what the call reads."""
    target = Path(out).resolve()
    for item in inputs:
        source = Path(item).resolve()
        if source == target or target in source.parents:
            raise OwnershipError(f"${param} {out} is the folder of the input {item}; writing there would "
                                 f"destroy it: pick a new ${param}", param=param)


def _manifest_or_none(run: "RunDir") -> Manifest | None:
    """A folder's manifest, None when it has none or it does not parse (then it is not ours)."""
    try:
        return run.manifest()
    except ReshapeError:
        return None


@dataclass(frozen=True)
class Manifest:
    """What ``run.json`` says about a run."""

    method: str
    params: dict[str, Any]
    fingerprint: str
    status: str = "running"
    parent: str | None = None
    tool: str = __version__
    summary: dict[str, Any] | None = None
    training: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "method": self.method, "status": self.status,
                "fingerprint": self.fingerprint, "params": self.params, "parent": self.parent,
                "tool": self.tool, "summary": self.summary, "training": self.training}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Manifest":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ReshapeError(f"{where} is not a reshape run manifest (no \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise ReshapeError(f"{where} has manifest version {data.get('version')!r}; this tool reads "
                               f"version {VERSION}: rerun the command that made it into a new $out")
        try:
            manifest = cls(method=str(data["method"]), params=dict(data["params"]),
                           fingerprint=str(data["fingerprint"]), status=str(data["status"]),
                           parent=data.get("parent"), tool=str(data.get("tool", "")),
                           summary=data.get("summary"), training=data.get("training"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReshapeError(f"{where} is malformed ({type(exc).__name__}: {exc}); "
                               "rerun the command that made it with $force") from None
        if manifest.status not in STATUSES:
            raise ReshapeError(f"{where}: status must be one of {', '.join(STATUSES)}, got {manifest.status!r}")
        return manifest


class RunDir:
    """One run directory: its layout, its manifest, and who may write into it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- what is there ---------------------------------------------------------------------
    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST_FILE

    def exists(self) -> bool:
        """Whether this folder holds a run of any version (manifest, spec or checkpoint)."""
        return any((self.path / name).exists() for name in RUN_MARKERS)

    def manifest(self) -> Manifest | None:
        """The manifest, or None for a folder without one (empty, foreign, or an older run)."""
        if not self.manifest_file.is_file():
            return None
        return Manifest.from_dict(read_json(self.manifest_file, "run manifest"), str(self.manifest_file))

    def is_done(self) -> bool:
        manifest = self.manifest()
        return manifest is not None and manifest.status == "done"

    def method(self) -> str:
        """The method that wrote the run, from its manifest (one clear error for older runs)."""
        return self.require_manifest().method

    def require_manifest(self) -> Manifest:
        manifest = self.manifest()
        if manifest is None:
            raise ReshapeError(f"{self.path} has no {MANIFEST_FILE}: it was written by reshape before 0.2 "
                               "or by another tool; rerun the command that made it (into a new $out) "
                               "to get a run this version can report")
        return manifest

    # -- ownership -------------------------------------------------------------------------
    def claim(self, method: str, params: Mapping[str, Any], parent: str | os.PathLike[str] | None = None,
              force: bool = False, fresh: str = "pass $force to start it over, or pick a new $out",
              inputs: Sequence[str | os.PathLike[str]] = (), lock: bool = True) -> Manifest:
        """Own this folder for ``method`` with ``params`` (every setting that changes the result).

        A new or empty folder gets a manifest; the same method and params continue (resume,
        or read back when done); anything else is refused (an ``OwnershipError``) with the
        parameters that differ, and ``fresh`` says how to start over. ``force`` deletes the old
        run first, only when it is a run of ``method`` holding nothing but what reshape writes
        (``RunDir.clear``). The folder is never the folder of an input, nor holds one:
        ``parent`` (the teacher) and ``inputs`` (a spec file), compared through symlinks and
        ``..``. Temporary files of interrupted writes are removed from a folder once it is
        claimed.

        With ``lock`` the folder is locked (``reshape.io.lock_folder``) until ``finish`` or the
        process ends, so a second writer is refused naming the first; a finished run of the
        same method and params is read back without the lock, so a read-only folder serves.
        """
        params = canonical(dict(params))
        digest = fingerprint({"method": method, "params": params})
        refuse_inputs(self.path, [p for p in (parent, *inputs) if p is not None])
        done = None if force else _manifest_or_none(self)
        if done is not None and done.status == "done" and (done.method, done.fingerprint) == (method, digest):
            return done
        self._verdict(method, params, digest, force, fresh, clear=False)  # refused: nothing written
        if lock:
            lock_folder(self.path)
        existing = self._verdict(method, params, digest, force, fresh, clear=True)  # again, locked
        if existing is not None:
            remove_stale_temps(self.path)  # ours: what an interrupted write left behind goes
            return existing
        manifest = self.start(method, params, parent)
        remove_stale_temps(self.path)
        return manifest

    def start(self, method: str, params: Mapping[str, Any],
              parent: str | os.PathLike[str] | None = None) -> Manifest:
        """Write the manifest of a new run of ``method`` with ``params``: what ``claim`` writes
        into a new folder, and how a caller owns a folder it wrote before it kept a manifest
        (it recognised its own older layout), so that from then on ``claim`` and ``clear`` own it."""
        params = canonical(dict(params))
        manifest = Manifest(method, params, fingerprint({"method": method, "params": params}),
                            parent=None if parent is None else os.fspath(parent))
        self.write(manifest)
        return manifest

    def _verdict(self, method: str, params: dict[str, Any], digest: str, force: bool, fresh: str,
                 clear: bool) -> Manifest | None:
        """The run to continue (same method and params), None for a folder to start (after
        ``force`` cleared it, when ``clear``), or a refusal naming what differs."""
        existing = self._existing(method, force, clear)
        if existing is None or (existing.method == method and existing.fingerprint == digest):
            return existing
        if existing.method != method:
            # Variants of one method (senet / senet_uniform) differ in params too: name them.
            changed = differences(existing.params, params, common=True) \
                if set(existing.params) == set(params) else []
            what = f"a '{existing.method}' run, not '{method}'"
            what += f" ({'; '.join(changed[:4])})" if changed else ""
        else:
            changed = differences(existing.params, params)
            what = f"a {method} run with other settings ({'; '.join(changed[:4]) or 'fingerprint differs'})"
        raise OwnershipError(f"{self.path} holds {what}; {fresh}")

    def _existing(self, method: str, force: bool, clear: bool = True) -> Manifest | None:
        """The manifest to check against; None after ``force`` cleared the folder (only checked
        that it may, without ``clear``)."""
        if self.path.exists() and not self.path.is_dir():
            raise OwnershipError(f"{self.path} is a file, not a run directory; pick another $out")
        if force and self.path.is_dir() and any(not is_bookkeeping(e) for e in self.path.iterdir()):
            self.clear(method, check_only=not clear)
            return None
        manifest = self.manifest()
        if manifest is None and self.path.is_dir() and any(not is_bookkeeping(e) for e in self.path.iterdir()):
            if self.exists():
                raise OwnershipError(f"{self.path} holds an older reshape run without {MANIFEST_FILE}; move "
                                     "it away ($force replaces only a run of this command), or pick a new $out")
            raise OwnershipError(f"{self.path} holds files that are not a reshape run; pick an empty or new $out")
        return manifest

    def clear(self, method: str, check_only: bool = False, also: Sequence[str] = ()) -> None:
        """Delete a run of ``method`` (``force``), keeping the folder itself.

        Only a folder whose manifest names ``method`` is cleared, and only when everything
        in it is what reshape writes there (``foreign``): another command's run, an older
        run without a manifest or a folder holding anyone else's files is refused, naming
        what is in the way, and nothing is deleted (``check_only``: the checks alone). ``also``
        names what this folder's own record says ``method`` wrote there (``foreign``).
        """
        manifest = self.manifest()
        how = "move it away or pick a new $out"
        if manifest is None:
            raise OwnershipError(f"{self.path} holds files that are not a reshape run of '{method}' (no "
                                 f"{MANIFEST_FILE}); $force replaces only a run of this command: {how}")
        if _VARIANT_OF.get(manifest.method, manifest.method) != _VARIANT_OF.get(method, method):
            raise OwnershipError(f"{self.path} holds a '{manifest.method}' run, not '{method}'; $force replaces "
                                 f"only a run of this command: {how}")
        stray = self.foreign(method, also)
        if stray:
            names = ", ".join(str(p.relative_to(self.path)) for p in stray[:5])
            more = f" and {len(stray) - 5} more" if len(stray) > 5 else ""
            raise OwnershipError(f"{self.path} holds files reshape did not write ({names}{more}); $force "
                                 "deletes nothing it did not write: move them away, or pick a new $out")
        if check_only:
            return
        for entry in self.path.iterdir():
            if entry.name == LOCK_FILE:
                continue  # held by this process: the lock stays
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def foreign(self, method: str, also: Sequence[str] = ()) -> list[Path]:
        """What in this folder reshape did not write for ``method``: anything but the run layout
        (``RUN_FILES``), the files ``method`` registered (``writes``) and ``also`` (glob
        patterns that vary by folder: the method folders a frontier's record names),
        temporary files of atomic writes, and stage runs below (a manifest naming
        ``method:...`` or this folder as parent), themselves checked the same way."""
        patterns = (*RUN_FILES, *written_by(method.partition(":")[0]), *also)
        here = self.path.resolve()
        stray = []
        for entry in sorted(self.path.iterdir()):
            if is_bookkeeping(entry) or any(fnmatch.fnmatchcase(entry.name, p) for p in patterns):
                continue
            sub = RunDir(entry)
            manifest = _manifest_or_none(sub) if entry.is_dir() and not entry.is_symlink() else None
            if manifest is not None and (manifest.method.startswith(f"{method.partition(':')[0]}:")
                                         or (manifest.parent and Path(manifest.parent).resolve() == here)):
                stray += sub.foreign(manifest.method)
            else:
                stray.append(entry)
        return stray

    def write(self, manifest: Manifest) -> None:
        write_json(self.manifest_file, manifest.to_dict())

    def update(self, **changes: Any) -> Manifest:
        """Rewrite the manifest with ``changes`` (status, summary, training)."""
        import dataclasses

        manifest = dataclasses.replace(self.require_manifest(), **changes)
        self.write(manifest)
        return manifest

    def finish(self, summary: Mapping[str, Any]) -> Manifest:
        """Mark the run done with its final ``summary`` (what reports and frontiers read)."""
        manifest = self.update(status="done", summary=canonical(dict(summary)))
        unlock_folder(self.path)
        return manifest

    def abandon(self) -> None:
        """Undo a claim that produced nothing (only the manifest is there, e.g. a budget found
        unreachable before any training): the folder goes, so another setting may use it."""
        names = {e.name for e in self.path.iterdir()} if self.path.is_dir() else set()
        if MANIFEST_FILE in names and names <= {MANIFEST_FILE, LOCK_FILE}:
            unlock_folder(self.path)  # removes the lock file it holds
            for name in names:
                (self.path / name).unlink(missing_ok=True)
            self.path.rmdir()

    # -- contents ---------------------------------------------------------------------------
    def weights_digest(self) -> str:
        """A digest of the saved weights: what a student's fingerprint records of its teacher."""
        file = self.path / WEIGHTS_FILE
        if not file.is_file():
            raise ReshapeError(f"{self.path} has no trained weights ({WEIGHTS_FILE}); train it first")
        h = hashlib.sha256()
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()[:16]

    def trained_on(self) -> str:
        """The dataset the run's training recorded ("" when it records none)."""
        file = self.path / CONFIG_FILE
        if not file.is_file():
            return ""
        data = read_json(file, "training config")
        return str(data.get("dataset", "")) if isinstance(data, dict) else ""


# -- outputs that are not run directories ------------------------------------------------------
#: Files that make a folder the run of a network (its manifest aside).
NETWORK_FILES = (SPEC_FILE, WEIGHTS_FILE, CHECKPOINT_FILE)


def file_target(path: str | os.PathLike[str], param: str = "out") -> Path:
    """``path`` (the value of ``param``) checked as the target of a file output (a plot, a
    spec, a JSON result): it never lands inside the run of a network (a synthesized spec
    written to ``runs/teacher/spec.json`` would corrupt that run). Checked before any work, so
    a long command does not fail at its last step; that the path is a file, not a folder, the
    CLI's ``OutPath`` checks first.
    """
    path = Path(path)
    if any((path.parent / name).exists() for name in NETWORK_FILES):
        raise OwnershipError(f"${param} {path} is inside the run directory {path.parent}; "
                             "write it outside any run (pick another path)", param=param)
    return path


def not_a_run(path: str | os.PathLike[str], param: str) -> Path:
    """``path`` (the value of ``param``) as a folder that holds other runs (a cache), refused
    when it is a run itself."""
    path = Path(path)
    if RunDir(path).exists():
        raise OwnershipError(f"${param} {path} is a run directory; pick a folder of its own", param=param)
    return path


# -- what a finished run holds ------------------------------------------------------------------
#: The method a standalone ``reshape train`` (``reshape.train.fit``) records: a network, not a
#: method, so its label is the folder name (a sweep of trained networks stays one point each).
PLAIN_TRAINING = "train"
NO_MANIFEST = "(no run.json)"


def summarize(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The one summary of a run that reports, ``reshape eval``, the demo and frontiers print.

    ``method`` comes from ``run.json`` (None for an older run without one), ``relus``,
    ``macs`` and ``depth`` from counting the saved network (stem ReLU included), ``top1``
    (a fraction) from the manifest's summary or training record, else the last finished
    epoch in ``metrics.jsonl`` (an unfinished or older run), and ``budget`` from the
    method's params when it had one. ``label`` names the run in plots: the method, the
    folder name for a plain training, ``<folder> (no run.json)`` for an older run.
    """
    from .accounting import count

    path = Path(path)
    _require_run_dir(path)
    manifest = RunDir(path).manifest()
    spec, model = load_run(path)
    c = count(model, spec.input_shape)
    summary = (manifest.summary or {}) if manifest else {}
    training = ((manifest.training or {}).get("last") or {}) if manifest else {}
    top1 = summary.get("top1", summary.get("test_top1", training.get("test_top1")))
    if top1 is None:
        top1 = _last_top1(path)
    budget = summary.get("budget", (manifest.params.get("budget") if manifest else None))
    if manifest is None:
        label = f"{path.name} {NO_MANIFEST}"
    else:
        label = path.name if manifest.method == PLAIN_TRAINING else manifest.method
    return {"run": str(path), "method": manifest.method if manifest else None, "label": label,
            "status": manifest.status if manifest else None, "relus": c.relus, "macs": c.macs,
            "depth": c.nonlinear_depth, "top1": None if top1 is None else float(top1), "budget": budget,
            "dataset": RunDir(path).trained_on()}


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` (one JSON row per finished epoch); none when it is absent.

    A last line cut short (a process killed while appending it) is no row: the epoch it
    belonged to has no checkpoint either, and a resumed run writes it again.
    """
    path = Path(run_dir, METRICS_FILE)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        try:
            json.loads(lines[-1])
        except json.JSONDecodeError:
            lines.pop()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise ReshapeError(f"{path} is damaged (line {exc.doc[:40]!r}: {exc.msg}); "
                           "pass $force to start the run over") from None


# -- training compute -------------------------------------------------------------------------
#: A compute record: what the weights of a run received in training, its parents' included.
#: ``phases`` lists each training the weights went through (the teacher's, a base's, each
#: stage's), oldest first; the totals are their sums (None where a phase predates the record).
COMPUTE_TOTALS = ("image_passes", "steps", "seconds")


def own_compute(run_dir: str | os.PathLike[str], method: str) -> dict[str, Any]:
    """The training done in ``run_dir`` itself, from its finished epochs in ``metrics.jsonl``
    (a resumed run's rows are its final weights' epochs: those after the checkpoint are cut);
    unknown (None) where no epoch or one without counts is recorded."""
    rows = read_metrics(run_dir)
    known = bool(rows) and all("train_images" in r for r in rows)
    return {"run": Path(run_dir).name, "method": method, "epochs": len(rows),
            "image_passes": sum(int(r["train_images"]) for r in rows) if known else None,
            "steps": sum(int(r["steps"]) for r in rows) if known else None,
            "seconds": round(sum(float(r.get("epoch_s", 0.0)) for r in rows), 1)}


def chain_compute(phases: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A compute record of ``phases`` (oldest first): the phases and their summed totals."""
    totals = {k: None if any(p.get(k) is None for p in phases) else sum(p[k] for p in phases)
              for k in COMPUTE_TOTALS}
    if totals["seconds"] is not None:
        totals["seconds"] = round(totals["seconds"], 1)
    return {**totals, "phases": [dict(p) for p in phases]}


def compute_of(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The compute recorded for the weights in ``run_dir``; a run trained before the record
    existed counts its own epochs only, and its totals say unknown (None)."""
    manifest = RunDir(run_dir).manifest()
    record = ((manifest.training or {}).get("compute") if manifest else None)
    if record:
        return record
    return chain_compute([own_compute(run_dir, manifest.method if manifest else "unknown")])


def _last_top1(path: Path) -> float | None:
    """The last ``test_top1`` in ``metrics.jsonl``, if any."""
    return next((row["test_top1"] for row in reversed(read_metrics(path)) if "test_top1" in row), None)


# -- weights ---------------------------------------------------------------------------------
def load_weights(model: nn.Module, file: str | os.PathLike[str]) -> None:
    """Load safetensors weights, failing clearly when they belong to another network."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise ReshapeError(f"cannot read weights {file}: {exc}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        kind = "missing" if missing else "unexpected" if unexpected else "shape mismatch at"
        raise ReshapeError(f"weights {file} do not match the spec ({kind} '{first}'"
                           f" and {len(missing) + len(unexpected) + len(wrong) - 1} more)")
    model.load_state_dict(state)


def save_weights(model: nn.Module, file: str | os.PathLike[str]) -> None:
    """Write the weights through ``reshape.io`` (safetensors' own ``save_file`` writes a
    temporary file of its own, 0600, that an interrupted run could not name or clean up)."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_bytes(file, save(state))


# -- rewritten runs (graph.json) ---------------------------------------------------------------
def save_recipe(run_dir: str | os.PathLike[str], steps: list[Any]) -> None:
    from .graph.recipe import SCHEMA_VERSION

    write_json(Path(run_dir, GRAPH_FILE),
               {"schema_version": SCHEMA_VERSION, "steps": [s.to_dict() for s in steps]})


def load_recipe(run_dir: str | os.PathLike[str]) -> list[Any]:
    """The rewrite steps of ``run_dir/graph.json``; a malformed file is one clear error."""
    from .graph.recipe import parse_recipe

    path = Path(run_dir, GRAPH_FILE)
    return parse_recipe(read_json(path, "graph recipe"), str(path))


def save_rewritten(run_dir: str | os.PathLike[str], spec: ArchSpec, steps: list[Any], mg: Any) -> None:
    """Write spec.json, graph.json and model.safetensors of a rewritten model."""
    save_spec(spec, Path(run_dir, SPEC_FILE))
    save_recipe(run_dir, steps)
    save_weights(mg.to_module(), Path(run_dir, WEIGHTS_FILE))


def load_rewritten(run_dir: str | os.PathLike[str]) -> tuple[ArchSpec, Any]:
    """The spec and rewritten graph (a ``ModelGraph``) of a run with ``graph.json``, weights loaded."""
    from .graph.recipe import replay

    spec, model = load_run(run_dir, weights=False)
    mg = replay(model, spec.input_shape, load_recipe(run_dir))
    load_weights(mg.to_module(), Path(run_dir, WEIGHTS_FILE))
    return spec, mg


# -- loading ------------------------------------------------------------------------------------
def is_run_dir(path: str | os.PathLike[str]) -> bool:
    return Path(path, SPEC_FILE).is_file()


def load_run(path: str | os.PathLike[str], weights: bool = True) -> tuple[ArchSpec, nn.Module]:
    """The spec and model of a run directory, with its saved weights when there are any.

    A rewritten run (``graph.json``) loads as its rewritten module; ``weights=False``
    always gives the network the spec describes, freshly built.
    """
    from .models import build

    path = Path(path)
    _require_run_dir(path)
    if weights and (path / GRAPH_FILE).is_file():
        spec, rewritten = load_rewritten(path)
        return spec, rewritten.to_module()
    spec = load_spec(path / SPEC_FILE)
    model = build(spec)
    if weights and (path / WEIGHTS_FILE).is_file():
        load_weights(model, path / WEIGHTS_FILE)
    return spec, model


@dataclass(frozen=True)
class TrainedRun:
    """A run directory loaded with its trained weights.

    ``trained_on`` is the dataset its training config records ("" when it records none);
    ``dataset`` is the one the run is used on: the one asked for, else ``trained_on``.
    ``digest`` identifies the weights (a student's fingerprint records its teacher by it).
    """

    path: Path
    spec: ArchSpec
    model: nn.Module
    trained_on: str
    dataset: str
    digest: str

    def need_dataset(self, param: str, purpose: str = "") -> str:
        """``dataset``, or a one-line error naming the parameter ``param`` that supplies it."""
        if not self.dataset:
            raise ReshapeError(f"{self.path} does not record its dataset; name it with ${param}{purpose}",
                               param=param)
        return self.dataset


def load_trained(path: str | os.PathLike[str], dataset: str | None = None, root: str | None = None,
                 what: str | None = None, check: bool = True) -> TrainedRun:
    """Run ``path`` with its trained weights, for use on ``dataset`` (default: the one it was trained on).

    One loader for eval, teachers, the methods and export, so a missing training or a
    network of other classes or input fails the same way everywhere. With ``check`` the
    network must fit the dataset's classes and input (``root`` locates its files when
    the preset counts classes from a folder); ``what`` names the run in errors.
    """
    from .data import check_fits, info

    path = Path(path)
    what = what or str(path)
    _require_run_dir(path)
    run = RunDir(path)
    digest = run.weights_digest()
    spec, model = load_run(path)
    trained_on = run.trained_on()
    used = dataset or trained_on
    if check and used:
        check_fits(spec, info(used, root), what, f"{used} needs", "pass the dataset it was trained on")
    return TrainedRun(path, spec, model, trained_on, used, digest)


def resolve(model: str, dataset: str | None = None, input_size: int | None = None,
            weights: bool = True) -> Any:
    """``reshape.models.resolve``, which also takes a run directory (counted as trained, at its input)."""
    from .models import Resolved
    from .models import resolve as resolve_model

    if not Path(model).is_dir():
        return resolve_model(model, dataset, input_size, weights)
    if dataset or input_size:
        raise ReshapeError("a run directory is counted as trained, at its own input; "
                           "drop $dataset and $input_size")
    spec, net = load_run(model)
    return Resolved(net, spec.input_shape, spec, str(model))


def _require_run_dir(path: Path) -> None:
    if not is_run_dir(path):
        raise ReshapeError(f"{path} is not a run directory (no {SPEC_FILE}); "
                           "train a network into it first (reshape train, or reshape.train.fit)")
