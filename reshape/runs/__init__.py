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

The package, by job: ``_layout`` (the file names), ``_manifest`` (``run.json``, ownership and
the guards on output paths), ``_load`` (weights, ``graph.json``, loading a run) and
``_summary`` (a run's summary, metrics and training compute). The fingerprints of settings
(``canonical``, ``fingerprint``, ``differences``) live in ``reshape.io`` and are re-exported here.
"""
from __future__ import annotations

from ..io import canonical, differences, fingerprint
from ._layout import (CHECKPOINT_FILE, CONFIG_FILE, GRAPH_FILE, MANIFEST_FILE, METRICS_FILE, NETWORK_FILES,
                      RUN_FILES, RUN_MARKERS, SPEC_FILE, WEIGHTS_FILE, is_run_dir)
from ._load import (TrainedRun, load_rewrite_steps, load_rewritten, load_run, load_trained, load_weights,
                    resolve_model_or_run, save_rewrite_steps, save_rewritten, save_weights, trace_model_or_run)
from ._manifest import (FORMAT, STATUSES, VERSION, Manifest, RunDir, file_target, not_a_run, refuse_inputs,
                        variant, writes, written_by)
from ._summary import (COMPUTE_TOTALS, NO_MANIFEST, PLAIN_TRAINING, chain_compute, compute_of, own_compute,
                       read_metrics, summarize)

__all__ = [
    "RunDir", "Manifest", "writes", "variant", "written_by", "refuse_inputs", "file_target", "not_a_run",
    "canonical", "fingerprint", "differences",
    "summarize", "read_metrics", "own_compute", "chain_compute", "compute_of",
    "load_weights", "save_weights", "save_rewrite_steps", "load_rewrite_steps", "save_rewritten", "load_rewritten",
    "is_run_dir", "load_run", "TrainedRun", "load_trained", "resolve_model_or_run", "trace_model_or_run",
    "SPEC_FILE", "WEIGHTS_FILE", "GRAPH_FILE", "MANIFEST_FILE", "CONFIG_FILE", "CHECKPOINT_FILE", "METRICS_FILE",
    "RUN_MARKERS", "RUN_FILES", "NETWORK_FILES", "FORMAT", "VERSION", "STATUSES",
    "PLAIN_TRAINING", "NO_MANIFEST", "COMPUTE_TOTALS",
]
