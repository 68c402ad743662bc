"""Graph IR and merge passes: see what a model's residual blocks cost, rewrite them, prove each rewrite.

    mg = trace(model, (3, 32, 32))                 # fx + networkx view, blocks listed
    mg = linearize(mg, ["layer1.0"])               # drop inner ReLUs, padding-exact form
    mg, reports = merge_blocks(mg, ["layer1.0"])   # one conv per block, checked < 1e-4
    model = mg.to_module()
"""
from __future__ import annotations

from .ir import Block, ModelGraph, trace
from .passes import (MergeReport, block_costs, block_inputs, fold_batchnorms, linearize, merge_block, merge_blocks,
                     merge_chain, predicted_macs, remove_activation)
from .rewrite import Step, parse_steps, replay
from .verify import EXACT_TOLERANCE, max_relative_error

__all__ = ["Block", "ModelGraph", "trace", "MergeReport", "block_costs", "block_inputs", "fold_batchnorms", "linearize",
           "merge_block", "merge_blocks", "merge_chain", "predicted_macs", "remove_activation",
           "Step", "parse_steps", "replay", "EXACT_TOLERANCE", "max_relative_error"]
