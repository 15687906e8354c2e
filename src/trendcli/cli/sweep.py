"""`trend sweep`: N_g, N_t and TM across eps for one source, with the fit of appendix V."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from trendcli.cli import options as ao
from trendcli.cli.render import RichProgress, console, fmt, print_json


def sweep_cmd(
    source: Annotated[Path, typer.Option("--source", help="Source model directory (the attacked model).")],
    target: Annotated[list[Path], typer.Option("--target", help="Target model directory (repeat for several).")],
    method: ao.AttackName = "pgd",
    points: Annotated[int, typer.Option("--points", help="Dense grid: eps_k = k*0.1/(points+1), k = 1..points.")] = 20,
    eps: ao.EpsList = None,
    fit: Annotated[Optional[int], typer.Option("--fit", help="Fit N(eps) = a(1 - exp(-b eps)) on the n-point grid k*0.1/(n+1) (authors: 4) and report its RMSE against the dense sweep.")] = None,
    alpha: ao.Alpha = None, steps: ao.Steps = None, random_start: ao.RandomStart = None, restarts: ao.Restarts = None,
    seed: ao.Seed = None, kappa: ao.Kappa = None, c: ao.C = None, lr: ao.Lr = None, binary_steps: ao.BinarySteps = None,
    norm: ao.Norm = None, overshoot: ao.Overshoot = None, max_iter: ao.MaxIter = None,
    store: ao.Store = Path("runs/adv"), limit: ao.Limit = None, batch_size: ao.BatchSize = None,
    device: ao.Device = "auto", split: ao.Split = "test", data_dir: ao.DataDir = None, force: ao.Force = False,
    layout: ao.Layout = "auto",
    out: Annotated[Optional[Path], typer.Option("--out", help="Output prefix for OUT.json and OUT.png (default: runs/sweep/<source>-<attack>).")] = None,
    as_json: ao.Json = False,
) -> None:
    """Sweep the attack strength: generated and transferred counts and TM per eps, optionally fitted."""
    from trendcli.transfer.heatmap import short_labels
    from trendcli.cli.outputs import check_sweep_out
    from trendcli.transfer.sweep import run_sweep, sweep_prefix

    params = ao.attack_params(None, alpha, steps, random_start, restarts, seed, kappa, c, lr, binary_steps, norm, overshoot, max_iter)
    eps_list = ao.parse_eps_list(eps) if eps else None
    check_sweep_out(sweep_prefix(str(source), method, out))
    with RichProgress(quiet=as_json) as progress:
        run = run_sweep(
            str(source), [str(t) for t in target], out, method, params, points=points, eps=eps_list, fit=fit,
            split=split, limit=limit, batch_size=batch_size, device=device, store=store, data_dir=data_dir,
            layout=layout, force=force, progress=progress,
        )
    res, json_path, png_path = run.result, run.files["json"], run.files["png"]
    data = res.to_dict()
    if as_json:
        print_json({**data, "files": {"json": str(json_path), "png": str(png_path)}})
        return
    from rich.table import Table

    table = Table(title=f"{method} from {res.source} on {data['attack']['n_images']} {split} images "
                        "(N_g(s) = N_t(s->s) over source-correct images; TM per eq. 1)")
    table.add_column("eps", justify="right")
    table.add_column("N_g(s)", justify="right")
    for name in short_labels([res.source, *res.targets])[1:]:
        table.add_column(f"N_t -> {name}", justify="right")
        table.add_column("TM [95 %]", justify="right")
    for j, e in enumerate(res.eps):
        cells = [f"{e:.4f}", str(int(res.n_self[j]))]
        for i in range(len(res.targets)):
            iv = data["tm_interval"][i][j]
            tm = fmt(float(res.tm[i, j]))
            cells += [str(int(res.n_t[i, j])), tm if iv[0] is None else f"{tm} [{iv[0]:.2f}, {iv[1]:.2f}]"]
        table.add_row(*cells)
    console.print(table)
    if res.fitted:
        rep = data["fit"]
        fits = Table(title=f"fit of N(eps) = a(1 - exp(-b eps)) on eps = {', '.join(f'{e:g}' for e in rep['eps'])}; "
                           f"RMSE against the {len(res.eps)}-point sweep")
        for col in ("curve", "a", "b", "RMSE (images)", "RMSE / max", "RMSE of TM"):
            fits.add_column(col, justify="left" if col == "curve" else "right")
        labels = short_labels([res.source, *res.targets])
        rows = [(f"N_g({labels[0]})", rep["self"], "")]
        rows += [(f"N_t(-> {lab})", f, fmt(f["rmse_tm"], ".4f")) for lab, f in zip(labels[1:], rep["targets"].values())]
        for curve, f, tm_err in rows:
            fits.add_row(curve, fmt(f["a"], ".4g"), fmt(f["b"], ".3g"), fmt(f["rmse"], ".2f"), fmt(f["rmse_rel"], ".1%"), tm_err)
        console.print(fits)
        for curve, f, _ in rows:
            if f["note"]:
                console.print(f"  {curve}: {f['note']}")
        console.print(f"RMSE of the fitted TM against the measured sweep: [bold]{fmt(rep['rmse_tm_mean'], '.4f')}[/] "
                      "(mean over targets; the paper reports about 0.05)")
    flags = data["cached"] + (data["fit_points"]["cached"] if res.fitted else [])
    console.print(f"{sum(flags)} of {len(flags)} attacks from the store; {res.seconds:.1f} s; "
                  f"wrote {json_path}, {png_path}")
