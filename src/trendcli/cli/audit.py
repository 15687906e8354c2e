"""`trend audit`: the transfer risk of one target model under attacks crafted on surrogates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from trendcli.cli import options as ao
from trendcli.cli.render import RichProgress, console, print_json


def audit_cmd(
    target: Annotated[Path, typer.Option("--target", help="The audited model directory (e.g. from `trend import deployed.onnx`).")],
    surrogates: Annotated[list[Path], typer.Option("--surrogates", help="Surrogate model directory, or a folder of them (repeatable).")],
    out: Annotated[Path, typer.Option("--out", help="Output prefix: writes OUT.json, OUT.html and OUT.matrix.json.")],
    method: ao.AttackName = "pgd",
    eps: ao.Eps = None, alpha: ao.Alpha = None, steps: ao.Steps = None, random_start: ao.RandomStart = None,
    restarts: ao.Restarts = None, seed: ao.Seed = None, kappa: ao.Kappa = None, c: ao.C = None, lr: ao.Lr = None,
    binary_steps: ao.BinarySteps = None, norm: ao.Norm = None, overshoot: ao.Overshoot = None, max_iter: ao.MaxIter = None,
    store: ao.Store = Path("runs/adv"), limit: ao.Limit = None, batch_size: ao.BatchSize = None,
    device: ao.Device = "auto", split: ao.Split = "test", data_dir: ao.DataDir = None, force: ao.Force = False,
    layout: ao.Layout = "auto",
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore an existing OUT.matrix.json (the attacks still come from the store).")] = False,
    as_json: ao.Json = False,
) -> None:
    """Attack every surrogate, evaluate the target on every set, and rank the surrogates by transfer risk."""
    from trendcli.transfer.audit import run_audit

    params = ao.attack_params(eps, alpha, steps, random_start, restarts, seed, kappa, c, lr, binary_steps, norm, overshoot, max_iter)
    with RichProgress(quiet=as_json) as progress:
        run = run_audit(
            target, surrogates, out, method, params, split=split, limit=limit, batch_size=batch_size, device=device,
            store=store, data_dir=data_dir, layout=layout, reuse=not fresh, force=force, progress=progress,
        )
    if as_json:
        print_json({**run.audit, "files": {k: str(v) for k, v in run.files.items()}})
        return
    _print_audit(run.audit)
    console.print("wrote " + ", ".join(str(p) for p in run.files.values()))


def _rate(record: dict[str, Any] | None, digits: int = 3) -> str:
    if not record or record.get("rate") is None:
        return "n/a (0 of 0)"
    lo, hi = record["interval"]
    return f"{record['rate']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] ({record['k']} of {record['n']})"


def _print_audit(audit: dict[str, Any]) -> None:
    table = Table(title=f"transfer risk of {audit['target']['name']}: TM(surrogate -> target) = N_t / N_g, 95 % interval")
    for col in ("rank", "surrogate", "risk"):
        table.add_column(col, justify="left" if col == "surrogate" else "right")
    for row in audit["surrogates"]:
        table.add_row(str(row["rank"]), row["surrogate"], _rate(row["risk"]))
    console.print(table)
    overall = audit.get("overall")
    if overall:
        console.print(f"worst case over surrogates (per image): TM {_rate(overall['worst_case_tm'])}; "
                      f"accuracy under every set {_rate(overall['worst_case_accuracy'], 4)}; "
                      f"clean {_rate(overall['clean_accuracy'], 4)}")
