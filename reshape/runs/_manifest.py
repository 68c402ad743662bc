"""The manifest (``run.json``) and ownership of a run directory, and the guards on output paths.

``RunDir.claim`` owns a folder for one method and configuration, ``writes`` and
``variant`` register what a forced rerun may delete, and ``refuse_inputs``,
``file_target`` and ``not_a_run`` keep outputs away from inputs and from other runs.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._version import __version__
from ..errors import OwnershipError, ReshapeError
from ..io import (LOCK_FILE, canonical, differences, fingerprint, is_bookkeeping, lock_folder, read_json,
                  remove_stale_temps, unlock_folder, write_json)
from ._layout import CONFIG_FILE, MANIFEST_FILE, NETWORK_FILES, RUN_FILES, RUN_MARKERS, WEIGHTS_FILE

FORMAT = "reshape.run"
VERSION = 1
STATUSES = ("running", "done")
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
              inputs: Sequence[str | os.PathLike[str]] = (), lock: bool = True, wait: bool = False) -> Manifest:
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
        process ends, so a second writer is refused naming the first (with ``wait``, it waits
        for the first: a stage other workers share); a finished run of the same method and
        params is read back without the lock, so a read-only folder serves.
        """
        params = canonical(dict(params))
        digest = fingerprint({"method": method, "params": params})
        refuse_inputs(self.path, [p for p in (parent, *inputs) if p is not None])
        done = None if force else _manifest_or_none(self)
        if done is not None and done.status == "done" and (done.method, done.fingerprint) == (method, digest):
            return done
        self._verdict(method, params, digest, force, fresh, clear=False)  # refused: nothing written
        if lock:
            lock_folder(self.path, wait=wait)
        existing = self._verdict(method, params, digest, force, fresh, clear=True)  # again, locked
        if existing is not None and existing.status == "done":  # finished while we waited: read back
            unlock_folder(self.path)
            return existing
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
