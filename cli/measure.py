"""``reshape measure``: run a network under a real two-party protocol (SPU) and report its cost."""
from __future__ import annotations

import click

from reshape.report.render import human, stdout_console

from ._common import OutPath, echo_json, user_errors


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
    from rich.console import Console

    from reshape.measure import measure

    err = Console(stderr=True)
    with err.status("measuring", spinner="dots") as status:
        def progress(text: str) -> None:
            status.update(text)
            if not err.is_terminal:
                err.print(text)

        record = measure(source, protocol, field, out, link, weights, progress=progress)
    if as_json:
        echo_json(record)
        return
    _print(record)


def _print(r: dict) -> None:
    from rich.table import Table

    m, c, b = r["measured"], r["counts"], r["backend"]
    table = Table(title=f"{r['source']}: SPU {b['protocol']} {b['field']}, 2 parties ({b['link']} link), "
                        f"weights {b['weights']}", title_justify="left")
    for column in ("part", "bytes", "send actions", "seconds"):
        table.add_column(column, justify="left" if column == "part" else "right")
    table.add_row("online (total)", human(m["online_bytes"]), str(m["send_actions"]), f"{m['online_s']:.3f}")
    for kind, row in m["by_kind"].items():
        table.add_row(f"  {kind}", human(row["bytes"]), str(row["send_actions"]), f"{row['seconds']:.3f}",
                      style="dim")
    table.add_row("one-time setup", human(m["setup_bytes"]), "", f"{m['setup_s']:.3f}")
    console = stdout_console()
    console.print(table)
    relu, vs = r["relu_part"], r["measured_over_estimated"]
    console.print(f"ReLUs {c['relus']:,}  MACs {human(c['macs'])}", highlight=False)
    if relu["per_kept_relu"] is not None:
        split = (f": {relu['slope_per_kept_relu']:.1f} B per kept ReLU ({relu['profile']} slope) + "
                 f"{human(relu['fixed_bytes'])}B fixed" if "profile" in relu else "")
        console.print(f"ReLU part {human(relu['bytes'])}B{split}; {relu['per_kept_relu']:.1f} B per kept ReLU "
                      f"with the fixed part", highlight=False)
    console.print(f"linear part (convolutions and the rest) {human(r['linear_part']['bytes'])}B", highlight=False)
    ratios = [f"{name} {v['ratio']:.2f} ({what} {v['profile']})" for name, what, v in (
        ("ReLU part", "vs the per-ReLU constant of", vs["relu_part_over_published"]),
        ("total", "vs the measured profile", vs.get("total_over_measured_profile"))) if v and v["ratio"] is not None]
    if ratios:
        console.print("measured/estimated bytes: " + "; ".join(ratios), highlight=False)
    console.print(f"check: max |MPC - plaintext| = {r['check']['max_abs_diff']:.2e} "
                  f"(outputs up to {r['check']['max_abs_output']:.3g})")
    console.print(f"written to {r['file']}")
