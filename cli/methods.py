"""``reshape methods``: the registered methods, their family, summary and params."""
from __future__ import annotations

import click

from reshape.report import run_views

from ._common import emit, user_errors


@click.command("methods")
@click.option("--json", "as_json", is_flag=True, help="Print the methods with their params as JSON.")
@user_errors
def command(as_json: bool) -> None:
    """List the methods `reshape frontier --methods` accepts, with their params and defaults.

    Each method is registered by name in reshape/methods/ (one file per method); its
    params are the knobs that change its result, set per run with
    `reshape frontier --set METHOD.PARAM=VALUE`; its presets are named sets of them
    (`published`, the defaults; `short`, for runs of a few epochs), chosen with
    `reshape frontier --preset NAME`. A family of "baseline" marks a method
    from the literature we compare against; "ours" marks this tool's pipelines.

    \b
    Examples:
      reshape methods
      reshape methods --json
    """
    from reshape.methods import describe_methods

    rows = describe_methods()
    emit(as_json, rows, run_views.methods_text(rows))
