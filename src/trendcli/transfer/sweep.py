"""Attack-strength sweeps: N_g, N_t and TM across eps, and the fit of appendix V.

N(eps) = a * (1 - exp(-b * eps)), b > 0, fit per curve by least squares; N_g(s, eps) is the
self-transfer count N_t(s->s, eps); TM(eps) = N_t(s->t, eps) / N_g(s, eps). Grid:
eps_k = k * 0.1 / (n + 1), k = 1..n (n = 20 dense, n = 4 for the fit); the RMSE of the
4-point fit is taken against the dense sweep. Source: docs/method.md,
"Attack strength curves (appendix V, eqs. 8-10)".
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trendcli.errors import UsageError
from trendcli.fsio import write_json_atomic
from trendcli.zoo.model import TrendModel
from trendcli.progress import NullProgress, Progress
from trendcli.stats import ratio
from trendcli.transfer.counts import pair_counts, tm_from_counts
from trendcli.stats import jsonable, wilson_intervals

__all__ = [
    "CurveFit",
    "SweepResult",
    "eps_grid",
    "fit_strength",
    "initial_guess",
    "rmse",
    "strength_curve",
    "SweepRun",
    "run_sweep",
    "sweep",
    "sweep_prefix",
]

SCHEMA = "trendcli-sweep/1"
EPS_MAX = 0.1  # the authors' grid spans (0, 0.1)


def eps_grid(n: int, top: float = EPS_MAX) -> np.ndarray:
    """eps_k = k * top / (n + 1), k = 1..n (docs/method.md appendix V; top = 0.1)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise UsageError(f"the number of eps points must be an integer >= 1, got {n!r}")
    return np.arange(1, n + 1, dtype=np.float64) * top / (n + 1)


def strength_curve(eps: np.ndarray | float, a: float, b: float) -> np.ndarray:
    """N(eps) = a * (1 - exp(-b * eps))  (eqs. 8-9, with b > 0)."""
    return a * -np.expm1(-b * np.asarray(eps, dtype=np.float64))


def _strength_jac(eps: np.ndarray, a: float, b: float) -> np.ndarray:
    """d/da and d/db of a * (1 - exp(-b * eps)): [1 - e, a * eps * e] with e = exp(-b * eps)."""
    e = np.exp(-b * eps)
    return np.stack([1.0 - e, a * eps * e], axis=1)


def initial_guess(eps: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """A starting point for the fit that scales with the data (the authors' a = 1e4 does not).

    For b on a log grid spanning b * eps from 0.05 (nearly linear) to 100 (saturated), the
    best a is linear least squares, a(b) = <g, N> / <g, g> with g = 1 - exp(-b * eps); the
    (a(b), b) with the smallest squared error starts the nonlinear fit. This separable
    search cannot start on the wrong side of the data, which a fixed p0 can on 500 images.
    """
    eps = np.asarray(eps, dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    lo, hi = 0.05 / eps.max(), 100.0 / eps.min()
    bs = np.geomspace(lo, hi, 400)
    g = -np.expm1(-bs[:, None] * eps[None, :])  # [B, P]
    a = (g @ y) / np.einsum("bp,bp->b", g, g)
    sse = ((a[:, None] * g - y[None, :]) ** 2).sum(1)
    best = int(np.argmin(sse))
    return float(max(a[best], 0.0)), float(bs[best])


@dataclass(frozen=True)
class CurveFit:
    """A fitted N(eps) = a * (1 - exp(-b * eps)); ``converged`` False = the start point kept."""

    a: float
    b: float
    converged: bool = True
    rmse_fit: float = float("nan")  # on the fitted points themselves
    note: str = ""  # why (a, b) sit on a bound, if they do

    def __call__(self, eps: np.ndarray | float) -> np.ndarray:
        if self.a == 0:
            return np.zeros_like(np.asarray(eps, dtype=np.float64))
        return strength_curve(eps, self.a, self.b)

    def to_dict(self) -> dict[str, Any]:
        return {"a": _num(self.a), "b": _num(self.b), "converged": self.converged, "rmse_fit": _num(self.rmse_fit),
                "note": self.note}


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """sqrt(mean((predicted - actual)^2)) over the points where both are defined."""
    p, y = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(y)
    return float(np.sqrt(np.mean((p[ok] - y[ok]) ** 2))) if ok.any() else float("nan")


def fit_strength(eps: Sequence[float], counts: Sequence[float]) -> CurveFit:
    """Least-squares fit of N(eps) = a * (1 - exp(-b * eps)) with scipy.optimize.curve_fit.

    Starts from :func:`initial_guess`; bounds a >= 0, b > 0 (trust-region reflective).
    All-zero counts give a = 0 (b undefined).
    """
    from scipy.optimize import curve_fit

    eps = np.asarray(eps, dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    if eps.shape != y.shape or eps.ndim != 1:
        raise UsageError(f"eps and counts must be 1-d of one length, got {eps.shape} and {y.shape}")
    if len(eps) < 2:
        raise UsageError(f"the fit has two parameters and needs at least 2 points, got {len(eps)}")
    if np.any(eps <= 0) or not np.all(np.isfinite(y)):
        raise UsageError("the fit needs eps > 0 and finite counts")
    if not np.any(y):
        return CurveFit(a=0.0, b=float("nan"), converged=True, rmse_fit=0.0)
    a0, b0 = initial_guess(eps, y)
    # Finite bounds keep the search away from the two degenerate directions: a -> inf with
    # b -> 0 (counts still linear in eps) and b -> inf (a step at the first eps). Either
    # end is a fit that says "this curve does not saturate / is already saturated".
    b_hi = 1e3 / eps.min()
    a_hi = 1e4 * max(float(np.abs(y).max()), 1.0)
    p0 = (min(max(a0, 1e-9), a_hi * 0.999), min(b0, b_hi * 0.999))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # covariance warnings on exact data
            (a, b), _ = curve_fit(
                strength_curve, eps, y, p0=p0, jac=_strength_jac, bounds=([0.0, 1e-9], [a_hi, b_hi]),
                method="trf", x_scale="jac", maxfev=2_000,
            )
        converged = True
    except (RuntimeError, ValueError):
        a, b, converged = a0, b0, False
    note = ""
    if a >= a_hi * (1 - 1e-6):
        note = f"no saturation over the fitted eps: linear, slope a*b = {a * b:.4g} images per unit eps"
    elif b >= b_hi * (1 - 1e-6):
        note = "saturated at the first fitted eps"
    return CurveFit(a=float(a), b=float(b), converged=converged, rmse_fit=rmse(strength_curve(eps, a, b), y), note=note)


def _num(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _nums(values: np.ndarray) -> list:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        return [_num(v) for v in arr]
    return [_nums(r) for r in arr]


# -- the sweep --------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """Measured counts per eps for one source and its targets, and optionally the fit."""

    source: str
    targets: list[str]
    eps: np.ndarray  # [P] the dense sweep
    n_self: np.ndarray  # [P] N_g(s, eps) = N_t(s->s, eps), over source-correct images
    n_c: np.ndarray  # [T, P] eq. 1 counts per target
    n_g: np.ndarray
    n_t: np.ndarray
    attack: dict[str, Any] = field(default_factory=dict)
    store_keys: list[str] = field(default_factory=list)
    cached: list[bool] = field(default_factory=list)
    fit_eps: np.ndarray | None = None  # [F]
    fit_self: np.ndarray | None = None  # [F] measured at the fit points
    fit_n_t: np.ndarray | None = None  # [T, F]
    fit_store_keys: list[str] = field(default_factory=list)
    fit_cached: list[bool] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tm(self) -> np.ndarray:
        """Eq. 1 at each eps: N_t / N_g per pair, [T, P] (NaN where N_g = 0)."""
        return tm_from_counts(self.n_g, self.n_t, square=False)

    @property
    def tm_curve(self) -> np.ndarray:
        """Eq. 10 measured: N_t(s->t, eps) / N_t(s->s, eps), [T, P]."""
        return ratio(self.n_t, self.n_self[None, :])

    @property
    def fitted(self) -> bool:
        return self.fit_eps is not None

    def fits(self) -> tuple[CurveFit, list[CurveFit]]:
        """Eq. 9 for N_g(s, eps) and eq. 8 for each N_t(s->t, eps), on the fit points."""
        if not self.fitted:
            raise UsageError("this sweep was run without fit")
        return fit_strength(self.fit_eps, self.fit_self), [fit_strength(self.fit_eps, row) for row in self.fit_n_t]

    def fit_report(self) -> dict[str, Any]:
        """Fitted (a, b) per curve and the RMSE of the fit against the dense sweep.

        ``rmse``: counts; ``rmse_rel``: RMSE / max of the measured dense curve; ``rmse_tm``:
        fitted TM(eps) = N_t fit / N_g fit against the measured eq. 10 ratio (the paper's
        "about 5%" reads as 0.05 here).
        """
        self_fit, target_fits = self.fits()
        dense_self = self_fit(self.eps)
        out: dict[str, Any] = {
            "eps": _nums(self.fit_eps),
            "self": {**self_fit.to_dict(), **_errors(dense_self, self.n_self)},
            "targets": {},
        }
        tm_rmses = []
        for name, f, measured, curve in zip(self.targets, target_fits, self.n_t, self.tm_curve):
            pred = f(self.eps)
            tm_fit = ratio(pred, dense_self)
            tm_rmse = rmse(tm_fit, curve)
            tm_rmses.append(tm_rmse)
            out["targets"][name] = {**f.to_dict(), **_errors(pred, measured), "rmse_tm": _num(tm_rmse)}
        finite = [v for v in tm_rmses if math.isfinite(v)]
        out["rmse_tm_mean"] = _num(float(np.mean(finite))) if finite else None
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "source": self.source,
            "targets": self.targets,
            "attack": self.attack,
            "eps": _nums(self.eps),
            "n_g_self": self.n_self.tolist(),
            "n_c": self.n_c.tolist(),
            "n_g": self.n_g.tolist(),
            "n_t": self.n_t.tolist(),
            "tm": _nums(self.tm),
            "tm_interval": jsonable(wilson_intervals(self.n_t, self.n_g)),
            "tm_eq10": _nums(self.tm_curve),
            "store_keys": self.store_keys,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
        }
        if self.fitted:
            out["fit_points"] = {
                "eps": _nums(self.fit_eps),
                "n_g_self": np.asarray(self.fit_self).tolist(),
                "n_t": np.asarray(self.fit_n_t).tolist(),
                "store_keys": self.fit_store_keys,
                "cached": self.fit_cached,
            }
            out["fit"] = self.fit_report()
        return out

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        write_json_atomic(path, self.to_dict())
        return path

    def plot(self, path: Path | str) -> Path:
        """PNG: measured counts and fitted curves (left), measured and fitted TM (right)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, (ax_n, ax_tm) = plt.subplots(1, 2, figsize=(11, 4.2))
        fine = np.linspace(0, max(self.eps.max(), self.fit_eps.max() if self.fitted else 0), 200)
        fits = self.fits() if self.fitted else None
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        curves = [(f"N_g({self.source})", self.n_self, self.fit_self, fits[0] if fits else None)]
        for i, name in enumerate(self.targets):
            curves.append((f"N_t(-> {name})", self.n_t[i], self.fit_n_t[i] if self.fitted else None,
                           fits[1][i] if fits else None))
        for i, (label, measured, at_fit, f) in enumerate(curves):
            c = colours[i % len(colours)]
            ax_n.plot(self.eps, measured, "o", ms=3.5, color=c, label=f"{label} measured")
            if f is not None:
                ax_n.plot(fine, f(fine), "-", color=c, lw=1.3, label=f"fit a={f.a:.0f} b={f.b:.1f}")
                ax_n.plot(self.fit_eps, at_fit, "x", color=c, ms=7)
        ax_n.set_xlabel("eps (L-inf)")
        ax_n.set_ylabel("images")
        ax_n.set_title("generated / transferred (x = fit points)")
        ax_n.legend(fontsize=7)
        ax_n.grid(alpha=0.3)
        for i, name in enumerate(self.targets):
            c = colours[(i + 1) % len(colours)]
            ax_tm.plot(self.eps, self.tm_curve[i], "o", ms=3.5, color=c, label=f"-> {name} measured")
            if fits:
                ax_tm.plot(fine[1:], ratio(fits[1][i](fine[1:]), fits[0](fine[1:])), "-", color=c, lw=1.3,
                           label=f"-> {name} fit")
        ax_tm.set_ylim(0, 1.05)
        ax_tm.set_xlabel("eps (L-inf)")
        ax_tm.set_ylabel("TM = N_t(s->t) / N_t(s->s)")
        ax_tm.set_title(f"source {self.source}")
        ax_tm.legend(fontsize=7)
        ax_tm.grid(alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=130, format="png")
        plt.close(fig)
        return path


def _errors(pred: np.ndarray, measured: np.ndarray) -> dict[str, Any]:
    err = rmse(pred, measured)
    top = float(np.max(measured)) if len(measured) else 0.0
    return {"rmse": _num(err), "rmse_rel": _num(err / top) if top > 0 else None}


def sweep(
    source: TrendModel | str | Path,
    targets: Sequence[TrendModel | str | Path],
    method: str = "pgd",
    params: dict[str, Any] | None = None,
    *,
    points: int = 20,
    eps: Sequence[float] | None = None,
    fit: int | None = None,
    split: str = "test",
    limit: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    store: str | Path = "runs/adv",
    data_dir: Path | None = None,
    layout: str = "auto",
    force: bool = False,
    progress: Progress | None = None,
) -> SweepResult:
    """N_g, N_t and TM of ``source`` against ``targets`` at every eps (docs/method.md appendix V).

    ``eps`` overrides the dense grid eps_k = k * 0.1 / (points + 1); ``fit`` = n adds the
    n-point grid and fits eqs. 8-9 on it. Every attack goes through the store, so a rerun
    only repeats forward passes. ``params`` holds the other attack parameters (eps is set
    per point).
    """
    from trendcli.transfer import streaming

    t0 = time.perf_counter()
    progress = progress or NullProgress()
    if not targets:
        raise UsageError("a sweep needs at least one target")
    dense = np.asarray(sorted(float(e) for e in eps), dtype=np.float64) if eps else eps_grid(points)
    if np.any(dense <= 0) or len(dense) == 0:
        raise UsageError("every eps of a sweep must be > 0")
    if fit is not None and fit < 2:
        raise UsageError(f"fit needs at least 2 points (two parameters), got {fit}")
    fit_grid = eps_grid(fit) if fit else None
    params = {k: v for k, v in (params or {}).items() if k != "eps"}
    models, names = streaming.prepare_models([source, *targets], device)
    src = models[0]
    split_seed = (src.meta.get("split") or {}).get("seed", 0)
    data = streaming.load_eval_data(src.spec.dataset, split, data_dir, split_seed)
    clean_cache: dict = {}
    evaluated = dict(enumerate(models))
    tgt = list(range(1, len(models)))
    measured: dict[float, tuple] = {}

    def measure(e: float) -> tuple:
        if e in measured:
            return measured[e]
        result = streaming.run_attack(
            src.meta.get("path") or src, method, {**params, "eps": float(e)}, split=split, limit=limit,
            batch_size=batch_size, device=device, store=store, force=force, data_dir=data_dir, layout=layout,
            progress=progress,
        )
        ev = streaming.evaluate_set(result.advset, evaluated, data, batch_size, clean_cache, progress, f"eps {e:.4f}")
        self_counts = pair_counts(ev.clean_ok[0], ev.adv_ok[0], ev.clean_ok[0], ev.adv_ok[0])
        counts = pair_counts(
            ev.clean_ok[0], ev.adv_ok[0], np.stack([ev.clean_ok[t] for t in tgt]), np.stack([ev.adv_ok[t] for t in tgt])
        )
        measured[e] = (int(self_counts.n_t), counts, result.key, bool(result.cached), len(ev.labels))
        return measured[e]

    rows = [measure(float(e)) for e in dense]
    fit_rows = [measure(float(e)) for e in fit_grid] if fit_grid is not None else None
    first = models[0]
    return SweepResult(
        source=names[0],
        targets=names[1:],
        eps=dense,
        n_self=np.array([r[0] for r in rows], dtype=np.int64),
        n_c=np.stack([r[1].n_c for r in rows], axis=1),
        n_g=np.stack([r[1].n_g for r in rows], axis=1),
        n_t=np.stack([r[1].n_t for r in rows], axis=1),
        attack={
            "method": method,
            "params": streaming.normalize_params(params),
            "split": split,
            "limit": limit,
            "batch_size": batch_size,
            "n_images": rows[0][4],
            "dataset": first.spec.dataset,
            "grid": "explicit" if eps else f"k*0.1/({points}+1), k=1..{points}",
        },
        store_keys=[r[2] for r in rows],
        cached=[r[3] for r in rows],
        fit_eps=fit_grid,
        fit_self=np.array([r[0] for r in fit_rows], dtype=np.int64) if fit_rows else None,
        fit_n_t=np.stack([r[1].n_t for r in fit_rows], axis=1) if fit_rows else None,
        fit_store_keys=[r[2] for r in fit_rows] if fit_rows else [],
        fit_cached=[r[3] for r in fit_rows] if fit_rows else [],
        seconds=time.perf_counter() - t0,
    )


# -- the stage -------------------------------------------------------------------------------------


@dataclass
class SweepRun:
    """What the sweep stage did: the sweep and its files, ``{"json": OUT.json, "png": OUT.png}``."""

    result: SweepResult
    files: dict[str, Path]


def sweep_prefix(source: TrendModel | str | Path, method: str, out: str | Path | None = None) -> Path:
    """OUT without .json/.png; default ``runs/sweep/<source directory>-<method>``."""
    if out is None:
        name = source.name if isinstance(source, TrendModel) else Path(source).name
        return Path("runs/sweep") / f"{name}-{method}"
    out = Path(out)
    return out.with_suffix("") if out.suffix in (".json", ".png") else out


def run_sweep(
    source: TrendModel | str | Path,
    targets: Sequence[TrendModel | str | Path],
    out: str | Path | None = None,
    method: str = "pgd",
    params: dict[str, Any] | None = None,
    *,
    points: int = 20,
    eps: Sequence[float] | None = None,
    fit: int | None = None,
    split: str = "test",
    limit: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    store: str | Path = "runs/adv",
    data_dir: Path | None = None,
    layout: str = "auto",
    force: bool = False,
    progress: Progress | None = None,
) -> SweepRun:
    """The sweep stage: :func:`sweep` and its files OUT.json and OUT.png (:func:`sweep_prefix`)."""
    prefix = sweep_prefix(source, method, out)
    result = sweep(source, targets, method, params, points=points, eps=eps, fit=fit, split=split, limit=limit,
                   batch_size=batch_size, device=device, store=store, data_dir=data_dir, layout=layout, force=force,
                   progress=progress)
    files = {"json": prefix.with_name(prefix.name + ".json"), "png": prefix.with_name(prefix.name + ".png")}
    result.save(files["json"])
    result.plot(files["png"])
    return SweepRun(result, files)
