"""``reshape measure``: run a network under a real two-party protocol (SPU) and report its cost."""
from __future__ import annotations

import click

from reshape.report import views

from ._common import OutPath, emit, user_errors


@click.command("measure")
@click.argument("source", type=click.Path(exists=True))
@click.option("--protocol", type=click.Choice(["cheetah", "semi2k"]), default="cheetah", show_default=True,
              help="SPU protocol: cheetah (HE + silent OT) or semi2k (online cost; its setup uses a trusted dealer).")
@click.option("--field", type=click.Choice(["fm64", "fm128"]), default="fm64", show_default=True,
              help="Ring of the secret shares.")
@click.option("--out", type=OutPath(directory=True),
              help="Folder for pi_<protocol>_<field>.json (default: the run directory, or the spec's folder).")
@click.option("--link", type=click.Choice(["auto", "brpc", "mem"]), default="auto", show_default=True,
              help="brpc: two processes over 127.0.0.1; mem: two parties in one process; auto: brpc, else mem.")
@click.option("--weights", type=click.Choice(["secret", "public"]), default="secret", show_default=True,
              help="secret: SPU's model, weights secret-shared; public: both parties see them (ReLU-side cost).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurement record as JSON.")
@user_errors
def command(source: str, protocol: str, field: str, out: str | None, link: str, weights: str,
            as_json: bool) -> None:
    """Run one image through SOURCE under SecretFlow SPU with two parties and report what it cost.

    SOURCE is a run directory (its trained weights) or a spec JSON (seeded random
    weights). The network is rebuilt in JAX in the backend environment with BN folded
    into the convolutions; masked ReLUs cost only their kept positions. The secure
    output is checked against the PyTorch forward. Bytes are rank 0's sent + received
    bytes; the one-time setup (Cheetah's OT and HE keys) is reported apart. The record
    is written as pi_<protocol>_<field>.json, which `reshape pareto --x measured-bytes`
    and scripts/fit_pi_costs.py read. Needs the backend: `make pi-backend`.

    \b
    Examples:
      make pi-backend                                   # once: .venv-pi with spu 0.9.5
      reshape measure demo-out/teacher --protocol cheetah
      reshape measure spec.json --protocol semi2k --out measured/ --json
      reshape measure runs/senet-10k --protocol cheetah --weights public
    """
    from reshape.measure import measure

    with views.spinner("measuring") as progress:
        record = measure(source, protocol, field, out, link, weights, progress=progress)
    emit(as_json, record, views.measurement_view(record))
