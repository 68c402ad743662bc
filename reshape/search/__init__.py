"""Budget-frontier search with Optuna: declarative spaces, one objective, resumable shared studies.

    from reshape.search import load_space, search
    from reshape.train import TrainConfig
    study = search(load_space("hybrenet"), "fashion-mnist-mini", [25_000, 50_000], trials=20,
                   storage="journal:search.log", study_name="hrn", out="runs/search",
                   cfg=TrainConfig(epochs=2), limit=2000)

``space`` reads and validates a space file, ``objective`` turns one trial into a trained,
counted network, ``study`` opens storages and runs workers (docs/search.md).
"""
from __future__ import annotations

from .objective import Design, Objective, PipelineObjective, design, trial_record
from .space import PipelineSpace, SearchSpace, bundled, load_space, parse
from .study import (check_reachable, completed, open_storage, open_study, run_worker, search, search_pipeline,
                    warm_start_trials)

__all__ = ["Design", "Objective", "PipelineObjective", "PipelineSpace", "SearchSpace", "bundled", "check_reachable",
           "completed", "design", "load_space", "open_storage", "open_study", "parse", "run_worker", "search",
           "search_pipeline", "trial_record", "warm_start_trials"]
