"""`trend report`: one static HTML page describing a study run, and its findings beside the paper's.

Reads a run directory's outputs only: study.json, models/*/model.json,
matrices/*.json (+ PNG heatmaps), ensembles/*.json, evaluations/*/evaluation.json (+ PNGs),
exports/*.onnx and *.infer.json, tasks/*.json, last_run.json. A section whose files are absent
says so; a file that is present but malformed raises RunFileError naming it.

Writes DIR/index.html (self-contained: images embedded as data URIs), DIR/findings.md (a
markdown table: claim | paper | this run | holds?) and DIR/findings.json, each atomically.
The findings' rules are in trendcli.report.findings.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trendcli.report import findings as claims
from trendcli.errors import TrendError, UsageError
from trendcli.report.findings import (
    Finding,
    agd_vs_dag_finding,
    asymmetry_finding,
    ensemble_robustness_finding,
    export_accuracy_finding,
    findings_markdown,
    fmt,
    fmt_ratio,
    low_bit_input_finding,
    seed_finding,
)

__all__ = ["FINDINGS_END", "FINDINGS_START", "Report", "Run", "RunFileError", "compute_findings", "findings_table",
           "load_run", "render_html", "splice_findings", "write_report"]

FINDINGS_START = "<!-- findings:start -->"
FINDINGS_END = "<!-- findings:end -->"
EVALUATION_FORMAT = "trendcli-evaluation/1"
ENSEMBLE_FORMAT = "trendcli-ensemble/1"
MATRIX_SCHEMA = "trendcli-matrix/1"
LOW_NOTE = "Paper numbers are CIFAR-10 (ResNet18) unless stated; this run's dataset and models may differ."


class RunFileError(TrendError):
    """A file of a run directory is present but malformed; the message names the file."""


# -- reading -----------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); rerun the stage that writes it") from None
    except OSError as exc:
        raise RunFileError(f"cannot read {path}: {exc.strerror}") from None


def _fail(path: Path, message: str) -> RunFileError:
    return RunFileError(f"{path}: {message}; rerun the stage that writes it")


def _dict(value: Any, path: Path, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"{what} must be an object, got {type(value).__name__}")
    return value


def _num(value: Any, path: Path, what: str) -> float | None:
    """A JSON number (None stays None); anything else is a malformed file."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, f"{what} must be a number, got {value!r}")
    return float(value)


def _square(value: Any, k: int, path: Path, what: str) -> np.ndarray:
    """A k x k list of numbers or nulls as a float array with NaN for null."""
    if not isinstance(value, list) or len(value) != k or any(not isinstance(r, list) or len(r) != k for r in value):
        raise _fail(path, f"{what!r} must be a {k}x{k} list (one row and column per name)")
    return np.array([[np.nan if v is None else _num(v, path, what) for v in row] for row in value], dtype=np.float64)


@dataclass
class ModelRow:
    """A model of the run and its card (None: not trained yet)."""

    name: str
    dir: Path
    card: dict[str, Any] | None  # None: not trained (yet)


@dataclass
class MatrixView:
    """A transferability matrix file, its TM (NaN = undefined) and its heatmaps."""

    name: str
    path: Path
    data: dict[str, Any]
    names: list[str]
    tm: np.ndarray
    n_g: np.ndarray
    entries: list[dict[str, Any]]  # per model: spec and train config (from the matrix or the card)
    pngs: list[Path]


@dataclass
class EnsembleView:
    """A designed ensemble and its ranked design candidates."""

    name: str
    path: Path
    data: dict[str, Any]
    candidates: list[dict[str, Any]] | None
    candidates_note: str


@dataclass
class EvaluationView:
    """An ensemble evaluation and its plots."""

    name: str
    path: Path
    data: dict[str, Any]
    pngs: list[Path]


@dataclass
class ExportView:
    """An ONNX export (file, metadata) and its inference record."""

    name: str
    onnx: Path | None
    onnx_bytes: int | None
    metadata: dict[str, Any] | None
    infer: dict[str, Any] | None
    infer_path: Path | None


@dataclass
class Run:
    """Everything a report shows, read and checked from a run directory."""

    path: Path
    study: dict[str, Any] | None
    models: list[ModelRow] = field(default_factory=list)
    matrices: list[MatrixView] = field(default_factory=list)
    ensembles: list[EnsembleView] = field(default_factory=list)
    evaluations: list[EvaluationView] = field(default_factory=list)
    exports: list[ExportView] = field(default_factory=list)
    last_run: dict[str, Any] | None = None
    task_records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str((self.study or {}).get("name") or self.path.name)

    @property
    def dataset(self) -> str:
        return str((self.study or {}).get("dataset") or "?")

    def card_for(self, model_dir: str | None) -> dict[str, Any] | None:
        """The card of a model directory as recorded elsewhere (matched by directory name)."""
        if not model_dir:
            return None
        base = Path(model_dir).name
        return next((m.card for m in self.models if m.dir.name == base and m.card is not None), None)


def _load_models(run_dir: Path, study: dict[str, Any] | None) -> list[ModelRow]:
    listed: list[tuple[str, Path]] = []
    if study is not None:
        entries = study.get("models", [])
        if not isinstance(entries, list):
            raise _fail(run_dir / "study.json", "'models' must be a list")
        for e in entries:
            e = _dict(e, run_dir / "study.json", "a 'models' entry")
            if not isinstance(e.get("name"), str):
                raise _fail(run_dir / "study.json", "every 'models' entry needs a 'name'")
            listed.append((e["name"], run_dir / str(e.get("dir") or f"models/{e['name']}")))
    known = {p.resolve() for _, p in listed}
    models_dir = run_dir / "models"
    if models_dir.is_dir():
        listed += [(p.name, p) for p in sorted(models_dir.iterdir()) if (p / "model.json").is_file() and p.resolve() not in known]
    rows = []
    for name, d in listed:
        card_path = d / "model.json"
        card = None
        if card_path.is_file():
            card = _dict(_read_json(card_path), card_path, "the model card")
            if not isinstance(card.get("spec"), dict):
                raise _fail(card_path, "the model card has no 'spec' object")
            acc = card.get("accuracy")
            if acc is not None:
                acc = _dict(acc, card_path, "'accuracy'")
                for key in ("val", "test"):
                    _num(acc.get(key), card_path, f"accuracy.{key}")
        rows.append(ModelRow(name, d, card))
    return rows


def _matrix_entries(run: Run, data: dict[str, Any], names: list[str], path: Path) -> list[dict[str, Any]]:
    models = data.get("models") or []
    dirs = data.get("model_dirs") or [None] * len(names)
    if not isinstance(models, list) or not isinstance(dirs, list):
        raise _fail(path, "'models' and 'model_dirs' must be lists")
    out = []
    for i, name in enumerate(names):
        entry = models[i] if i < len(models) and isinstance(models[i], dict) else {}
        card = run.card_for(dirs[i] if i < len(dirs) else None) or {}
        spec = entry.get("spec") if isinstance(entry.get("spec"), dict) else card.get("spec") or {}
        train = entry.get("train") if isinstance(entry.get("train"), dict) else card.get("train") or {}
        out.append({"name": name, "spec": spec, "train": train})
    return out


def _load_matrix(run: Run, path: Path) -> MatrixView:
    data = _dict(_read_json(path), path, "the matrix file")
    if data.get("schema") not in (None, MATRIX_SCHEMA):
        raise _fail(path, f"schema {data.get('schema')!r} is not {MATRIX_SCHEMA!r}")
    names = data.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _fail(path, "'names' must be a non-empty list of model names")
    k = len(names)
    n_g = _square(data.get("n_g"), k, path, "n_g")
    if "tm" in data:
        tm = _square(data["tm"], k, path, "tm")
    else:
        n_t = _square(data.get("n_t"), k, path, "n_t")
        with np.errstate(invalid="ignore", divide="ignore"):
            tm = np.where(n_g > 0, n_t / np.where(n_g > 0, n_g, 1), np.nan)
    finite = tm[np.isfinite(tm)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise _fail(path, "'tm' values must lie in [0, 1]")
    if not isinstance(data.get("clean_accuracy", {}), dict):
        raise _fail(path, "'clean_accuracy' must be an object")
    pngs = [p for p in (path.with_suffix(".png"), path.with_name(path.stem + ".groups.png")) if p.is_file()]
    return MatrixView(path.stem, path, data, names, tm, n_g, _matrix_entries(run, data, names, path), pngs)


def _design_limits(run: Run, path: Path, mx: MatrixView) -> tuple[list[str], list[str] | None] | None:
    """The require/candidates names the study's design task used for ``path`` (None if unknown)."""
    tasks = (run.study or {}).get("tasks") or []
    task = next((t for t in tasks if isinstance(t, dict) and t.get("stage") == "design" and isinstance(t.get("args"), dict)
                 and Path(str(t["args"].get("out", ""))).name == path.name), None)
    if task is None:
        return None
    by_dir = {Path(str(d)).name: n for n, d in zip(mx.names, mx.data.get("model_dirs") or []) if d}
    found = [[by_dir.get(Path(str(d)).name) for d in task["args"].get(key) or []] for key in ("require", "candidates")]
    if any(None in names for names in found):
        return None
    return found[0], found[1] or None


def _design_candidates(run: Run, data: dict[str, Any], path: Path) -> tuple[list[dict[str, Any]] | None, str]:
    """The design's ranked candidates: as recorded, or recomputed from the design's matrix with
    the study's require/candidates settings (trendcli.ensemble.selection, the same scoring as `trend design`)."""
    design = data.get("design") if isinstance(data.get("design"), dict) else {}
    recorded = design.get("candidates")
    if isinstance(recorded, list):
        return recorded, "as recorded by the design"
    matrix_ref = design.get("matrix")
    if not matrix_ref:
        return None, "the ensemble file records no design matrix"
    mx = next((m for m in run.matrices if m.path.name == Path(str(matrix_ref)).name), None)
    if mx is None:
        return None, f"design matrix {Path(str(matrix_ref)).name} is not in this run"
    from trendcli.ensemble.selection import design as design_subsets
    from trendcli.transfer.counts import symmetrize

    size = len(data["members"])
    limits = _design_limits(run, path, mx)
    require, pool = limits if limits is not None else ([], None)
    if size < 2 or size > len(pool or mx.names):
        return None, "no candidates for an ensemble of this size"
    clean = {k: float(v) for k, v in (mx.data.get("clean_accuracy") or {}).items() if isinstance(v, (int, float))}
    result = design_subsets(symmetrize(mx.tm), mx.names, size, require, pool, top=5, clean_accuracy=clean,
                            nan_policy=str(design.get("nan_policy") or "worst"))
    where = (f"recomputed from {mx.path.name} with the study's design settings" if limits is not None else
             f"recomputed from {mx.path.name} over all {len(mx.names)} models (the study's design settings are not recorded)")
    return [c.to_dict() for c in result.candidates], where


def _load_ensemble(run: Run, path: Path) -> EnsembleView:
    data = _dict(_read_json(path), path, "the ensemble file")
    if data.get("format") != ENSEMBLE_FORMAT:
        raise _fail(path, f"format {data.get('format')!r} is not {ENSEMBLE_FORMAT!r}")
    members = data.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) and "id" in m for m in members):
        raise _fail(path, "'members' must be a non-empty list of objects with an 'id'")
    candidates, note = _design_candidates(run, data, path)
    return EnsembleView(path.stem, path, data, candidates, note)


def _load_evaluation(path: Path) -> EvaluationView:
    data = _dict(_read_json(path), path, "the evaluation file")
    if data.get("format") != EVALUATION_FORMAT:
        raise _fail(path, f"format {data.get('format')!r} is not {EVALUATION_FORMAT!r}")
    ens = _dict(data.get("ensemble"), path, "'ensemble'")
    if not isinstance(ens.get("members"), list):
        raise _fail(path, "'ensemble.members' must be a list")
    clean = _dict(data.get("clean_accuracy"), path, "'clean_accuracy'")
    _num(clean.get("ensemble"), path, "clean_accuracy.ensemble")
    for m, v in _dict(clean.get("members", {}), path, "'clean_accuracy.members'").items():
        _num(v, path, f"clean_accuracy.members.{m}")
    table = data.get("table")
    if not isinstance(table, list):
        raise _fail(path, "'table' must be a list of rows")
    for row in table:
        row = _dict(row, path, "a 'table' row")
        if not isinstance(row.get("attack"), str) or _num(row.get("eps"), path, "table.eps") is None:
            raise _fail(path, "every 'table' row needs 'attack' and 'eps'")
        _num(row.get("ensemble_accuracy"), path, "table.ensemble_accuracy")
        for m, v in _dict(row.get("member_pgd_accuracy", {}), path, "'table.member_pgd_accuracy'").items():
            _num(v, path, f"table.member_pgd_accuracy.{m}")
    order = ["attack_success", "accuracy_bars", "accuracy_vs_size", "domination"]
    pngs = sorted(path.parent.glob("*.png"), key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.name))
    return EvaluationView(path.parent.name, path, data, pngs)


def _load_export(run_dir: Path, name: str) -> ExportView:
    onnx_path = run_dir / "exports" / f"{name}.onnx"
    infer_path = run_dir / "exports" / f"{name}.infer.json"
    metadata = None
    size = None
    if onnx_path.is_file():
        size = onnx_path.stat().st_size
        from trendcli.deploy.runtime import read_metadata

        metadata = read_metadata(onnx_path)  # OnnxExportError naming the file when it is not an export
    infer = None
    if infer_path.is_file():
        infer = _dict(_read_json(infer_path), infer_path, "the inference record")
        if _num(infer.get("accuracy"), infer_path, "accuracy") is None or not isinstance(infer.get("n"), int):
            raise _fail(infer_path, "needs 'accuracy' (a number) and 'n' (the number of images)")
        for key in ("images_per_s",):
            _num(infer.get(key), infer_path, key)
        lat = infer.get("latency_ms")
        if lat is not None:
            for key, v in _dict(lat, infer_path, "'latency_ms'").items():
                _num(v, infer_path, f"latency_ms.{key}")
    return ExportView(name, onnx_path if size is not None else None, size, metadata, infer,
                      infer_path if infer is not None else None)


def load_run(run_dir: str | Path) -> Run:
    """Read and check every output of a run directory (absent sections stay empty)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"no run directory at {run_dir} (run a study with `trend run STUDY.toml`)")
    parts = ("study.json", "models", "matrices", "ensembles", "evaluations", "exports")
    if not any((run_dir / p).exists() for p in parts):
        raise UsageError(f"{run_dir} is not a trendcli run directory (it has none of {', '.join(parts)})")
    study = None
    if (run_dir / "study.json").is_file():
        study = _dict(_read_json(run_dir / "study.json"), run_dir / "study.json", "the study record")
    run = Run(run_dir, study)
    run.models = _load_models(run_dir, study)
    run.matrices = [_load_matrix(run, p) for p in sorted((run_dir / "matrices").glob("*.json"))]
    run.ensembles = [_load_ensemble(run, p) for p in sorted((run_dir / "ensembles").glob("*.json"))]
    run.evaluations = [_load_evaluation(p) for p in sorted((run_dir / "evaluations").glob("*/evaluation.json"))]
    exports = run_dir / "exports"
    stems = sorted({p.name[: -len(".infer.json")] for p in exports.glob("*.infer.json")} | {p.stem for p in exports.glob("*.onnx")})
    run.exports = [_load_export(run_dir, s) for s in stems]
    if (run_dir / "last_run.json").is_file():
        run.last_run = _dict(_read_json(run_dir / "last_run.json"), run_dir / "last_run.json", "the last run record")
    for p in sorted((run_dir / "tasks").glob("*.json")):
        run.task_records.append(_dict(_read_json(p), p, "a task marker"))
    return run


# -- findings ----------------------------------------------------------------------------------------


def _config_key(entry: dict[str, Any]) -> str:
    """A model's configuration without its seed (what differs between seeds of one config)."""
    train = {k: v for k, v in entry["train"].items() if k not in ("seed", "device", "data_dir")}
    return json.dumps({"spec": entry["spec"], "train": train}, sort_keys=True, default=str)


def _rows_by(evaluation: EvaluationView, attack: str) -> list[dict[str, Any]]:
    return sorted((r for r in evaluation.data["table"] if r["attack"] == attack), key=lambda r: r["eps"])


def _tag(finding: Finding, label: str | None) -> Finding:
    if not label:
        return finding
    return Finding(finding.key, finding.claim, finding.paper, f"[{label}] {finding.this_run}", finding.holds,
                   finding.values, finding.source)


def _not_measured(key: str, claim: str, paper: str, why: str) -> Finding:
    return Finding(key, claim, paper, why, None)


def _matrix_findings(run: Run) -> list[Finding]:
    if not run.matrices:
        why = "no transferability matrix in this run"
        return [_not_measured("low_bit_input", claims.LOW_BIT_CLAIM, claims.LOW_BIT_PAPER, why),
                _not_measured("asymmetry", claims.ASYMMETRY_CLAIM, claims.ASYMMETRY_PAPER, why),
                _not_measured("seed", claims.SEED_CLAIM, claims.SEED_PAPER, why)]
    out = []
    several = len(run.matrices) > 1
    for kind in ("low_bit_input", "asymmetry", "seed"):
        for mx in run.matrices:
            src = str(mx.path.relative_to(run.path))
            if kind == "low_bit_input":
                f = low_bit_input_finding(mx.names, mx.tm, [e["spec"] for e in mx.entries], source=src)
            elif kind == "asymmetry":
                f = asymmetry_finding(mx.names, mx.tm, mx.n_g, source=src)
            else:
                f = seed_finding(mx.names, mx.tm, [_config_key(e) for e in mx.entries],
                                 [e["train"].get("seed") for e in mx.entries], source=src)
            out.append(_tag(f, mx.name if several else None))
    return out


def _evaluation_findings(run: Run) -> list[Finding]:
    if not run.evaluations:
        why = "no ensemble evaluation in this run"
        return [_not_measured("agd_vs_dag", claims.AGD_CLAIM, claims.AGD_PAPER, why),
                _not_measured("ensemble_robustness", claims.ENSEMBLE_CLAIM, claims.ENSEMBLE_PAPER, why)]
    several = len(run.evaluations) > 1
    agd_rows, ens_rows = [], []
    for ev in run.evaluations:
        src = str(ev.path.relative_to(run.path))
        label = ev.name if several else None
        agd = {r["eps"]: r["ensemble_accuracy"] for r in _rows_by(ev, "agd")}
        dag = {r["eps"]: r["ensemble_accuracy"] for r in _rows_by(ev, "dag")}
        if agd and dag:
            eps = sorted(set(agd) & set(dag))
            succ = lambda acc: None if acc is None else 1.0 - acc  # noqa: E731
            f = agd_vs_dag_finding(eps, [succ(agd[e]) for e in eps], [succ(dag[e]) for e in eps], source=src)
        else:
            f = Finding("agd_vs_dag", claims.AGD_CLAIM, claims.AGD_PAPER, "the evaluation did not run both agd and dag", None, source=src)
        agd_rows.append(_tag(f, label))
        rows = _rows_by(ev, "agd")
        attack = "agd"
        if not rows:
            attacks = sorted({r["attack"] for r in ev.data["table"]})
            attack = attacks[0] if attacks else "agd"
            rows = _rows_by(ev, attack)
        members = [str(m) for m in ev.data["ensemble"]["members"]]
        if rows:
            f = ensemble_robustness_finding(
                attack, [r["eps"] for r in rows], [r.get("ensemble_accuracy") for r in rows],
                {m: [(r.get("member_pgd_accuracy") or {}).get(m) for r in rows] for m in members}, source=src,
            )
        else:
            f = Finding("ensemble_robustness", claims.ENSEMBLE_CLAIM, claims.ENSEMBLE_PAPER, "no ensemble attack in the evaluation", None, source=src)
        ens_rows.append(_tag(f, label))
    return agd_rows + ens_rows


def _form_note(run: Run, ev: EvaluationView) -> str:
    """Why torch and ONNX numbers may legitimately differ: the evaluation's Qb form."""
    per_image = ev.data["ensemble"].get("per_image")
    if per_image is True:
        return ""
    dirs = ev.data["ensemble"].get("model_dirs") or []
    batchwise = []
    for m, d in zip(ev.data["ensemble"]["members"], dirs):
        spec = (run.card_for(d) or {}).get("spec", {})
        q = str(spec.get("input_quant", ""))
        if q.startswith("q") and (per_image is False or not spec.get("per_image", False)):
            batchwise.append(str(m))
    return f"the evaluation used per-minibatch Qb for {', '.join(batchwise)}; the export is per image" if batchwise else ""


def _export_findings(run: Run) -> list[Finding]:
    found = []
    for ex in run.exports:
        record = ex.infer_path or ex.onnx
        src = str(record.relative_to(run.path)) if record is not None else None
        members = set((ex.infer or {}).get("member_accuracy", {}) or [m.get("id") for m in (ex.metadata or {}).get("members", [])])
        ev = next((e for e in run.evaluations if set(map(str, e.data["ensemble"]["members"])) == members), None)
        if ex.infer is None:
            f = export_accuracy_finding(None, None, None, None, source=src)
        elif ev is None:
            f = Finding("export_accuracy", claims.EXPORT_CLAIM, claims.EXPORT_PAPER,
                        f"ONNX {fmt(ex.infer['accuracy'], 4)} on {ex.infer['n']} images; no torch evaluation of the same members",
                        None, {"onnx_accuracy": ex.infer["accuracy"], "onnx_images": ex.infer["n"]}, src)
        else:
            split_e = (ev.data.get("settings") or {}).get("split", "test")
            split_x = ex.infer.get("split", "test")
            note = _form_note(run, ev)
            if split_e != split_x:
                note = "; ".join(x for x in (note, f"different splits ({split_e} vs {split_x})") if x)
            f = export_accuracy_finding(
                _num(ev.data["clean_accuracy"].get("ensemble"), ev.path, "clean_accuracy.ensemble"),
                ev.data.get("n_images") if split_e == split_x else None,
                ex.infer["accuracy"], ex.infer["n"], note=note, source=src,
            )
        found.append(_tag(f, ex.name if len(run.exports) > 1 else None))
    if not found:
        found.append(_not_measured("export_accuracy", claims.EXPORT_CLAIM, claims.EXPORT_PAPER, "no export in this run"))
    return found


def compute_findings(run: Run) -> list[Finding]:
    """The run's findings in a fixed order: input quantization, asymmetry, seeds, A-GD vs D-AG,
    ensemble robustness, export accuracy (trendcli.report.findings states each rule)."""
    return _matrix_findings(run) + _evaluation_findings(run) + _export_findings(run)


# -- HTML --------------------------------------------------------------------------------------------

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa;margin:0}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px;background:#fff}
header{background:#0b3d91;color:#fff;padding:20px 32px}header h1{margin:0;font-size:26px}
header p{margin:4px 0 0;opacity:.85}nav{background:#e8eef8;padding:8px 32px;font-size:14px}
nav a{margin-right:18px;color:#0b3d91;text-decoration:none;font-weight:600}
h2{border-bottom:2px solid #0b3d91;padding-bottom:4px;margin-top:36px;color:#0b3d91}h3{margin-bottom:6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13.5px}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef2f7}tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.tw{overflow-x:auto;max-width:100%}
img{max-width:100%;border:1px solid #d0d7de;margin:6px 0}
.figs{display:flex;flex-wrap:wrap;gap:14px}.figs figure{margin:0;flex:1 1 420px}figcaption{font-size:12px;color:#57606a}
.muted{color:#57606a}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;min-width:150px;background:#f6f8fa}
.card b{display:block;font-size:22px;color:#0b3d91}
.holds td.v{background:#dafbe1;color:#116329;font-weight:700}.nothold td.v{background:#ffebe9;color:#a40e26;font-weight:700}
.unmeasured td.v{background:#eaeef2;color:#57606a;font-weight:700}
footer{margin-top:40px;border-top:1px solid #d0d7de;padding-top:10px;font-size:12.5px;color:#57606a}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:12px}code{font-size:90%}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], num_from: int = 99) -> str:
    """An HTML table; cells are escaped text, columns from ``num_from`` on right-aligned."""
    out = ['<div class="tw"><table><thead><tr>', *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f"<td{' class=num' if i >= num_from else ''}>{_e(c)}</td>" for i, c in enumerate(row))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _quant(spec: dict[str, Any]) -> str:
    iq = str(spec.get("input_quant", "?")).upper().replace("_", "-")
    text = f"{iq}-W{spec.get('weight_bits', '?')}-A{spec.get('act_bits', '?')}"
    return text + (" (per image)" if spec.get("per_image") else "")


def _section_summary(run: Run, findings: list[Finding]) -> str:
    trained = sum(m.card is not None for m in run.models)
    tally = {v: sum(f.verdict == v for f in findings) for v in ("holds", "does not hold", "not measured")}
    cards = [("models trained", f"{trained} / {len(run.models)}"), ("matrices", len(run.matrices)),
             ("ensembles", len(run.ensembles)), ("evaluations", len(run.evaluations)), ("exports", len(run.exports)),
             ("findings that hold", f"{tally['holds']} / {len(findings)}")]
    out = ['<section id="summary"><h2>Summary</h2><div class="cards">']
    out += [f'<div class="card"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in cards]
    out.append("</div>")
    for ens in run.ensembles:
        members = " + ".join(str(m["id"]) for m in ens.data["members"])
        out.append(f"<p>Ensemble <b>{_e(ens.name)}</b>: {_e(members)}</p>")
    for ev in run.evaluations:
        if ev.data.get("headline"):
            out.append(f"<p>Evaluation <b>{_e(ev.name)}</b> ({_e(ev.data.get('n_images', '?'))} images):</p><ul>")
            out += [f"<li>{_e(h)}</li>" for h in ev.data["headline"]]
            out.append("</ul>")
    seconds = sum(float(r.get("seconds") or 0) for r in run.task_records)
    if run.task_records:
        out.append(f"<p class=muted>{len(run.task_records)} finished tasks, {seconds:.1f} s of task time in all"
                   + (f"; last run on the {_e(run.last_run.get('executor', '?'))} executor" if run.last_run else "")
                   + ".</p>")
    out.append(f"<p class=muted>Findings: {tally['holds']} hold, {tally['does not hold']} do not hold, "
               f"{tally['not measured']} not measured (see <a href=\"#findings\">Findings</a>).</p></section>")
    return "".join(out)


def _section_models(run: Run) -> str:
    out = ['<section id="models"><h2>Models</h2>']
    if not run.models:
        return out[0] + "<p class=muted>No models in this run.</p></section>"
    rows = []
    for m in run.models:
        c = m.card
        if c is None:
            rows.append([m.name, "not trained", "", "", "", "", "", ""])
            continue
        spec, train, acc = c["spec"], c.get("train") or {}, c.get("accuracy") or {}
        rows.append([m.name, spec.get("arch", "?"), _quant(spec), train.get("optimizer", "?"), train.get("seed", "?"),
                     fmt(acc.get("val"), 4), fmt(acc.get("test"), 4), fmt(c.get("seconds"), 1)])
    out.append(_table(["name", "arch", "quantization (input-W-A)", "optimizer", "seed", "val acc.", "test acc.", "train s"],
                      rows, num_from=5))
    return "".join(out) + "</section>"


def _section_transfer(run: Run) -> str:
    from trendcli.transfer.counts import averages

    out = ['<section id="transferability"><h2>Transferability</h2>']
    if not run.matrices:
        return out[0] + "<p class=muted>No transferability matrix in this run.</p></section>"
    out.append("<p class=muted>TM(s&rarr;t) = N_t / N_g (paper eq. 1); rows = source, columns = target; "
               "averages leave out the diagonal; n/a = undefined (N_g = 0).</p>")
    for mx in run.matrices:
        atk = mx.data.get("attack") or {}
        params = ", ".join(f"{k}={v}" for k, v in (atk.get("params") or {}).items())
        out.append(f"<h3>{_e(mx.name)}</h3><p>{_e(atk.get('method', '?'))}({_e(params)}) on "
                   f"{_e(mx.data.get('n_images') or atk.get('n_images') or '?')} {_e(atk.get('split') or '')} images.</p>")
        out.append('<div class="figs">' + "".join(_img(p, p.name) for p in mx.pngs) + "</div>")
        rows_avg, cols_avg = averages(mx.tm)
        clean = mx.data.get("clean_accuracy") or {}
        rows = [[n, fmt(r), fmt(c), fmt(_num(clean.get(n), mx.path, f"clean_accuracy.{n}"), 4)]
                for n, r, c in zip(mx.names, rows_avg, cols_avg)]
        out.append(_table(["model", "row avg (as source)", "column avg (as target)", "clean acc."], rows, num_from=1))
    return "".join(out) + "</section>"


def _section_ensembles(run: Run) -> str:
    out = ['<section id="ensembles"><h2>Ensembles</h2>']
    if not run.ensembles:
        return out[0] + "<p class=muted>No designed ensemble in this run.</p></section>"
    for ens in run.ensembles:
        d = ens.data.get("design") if isinstance(ens.data.get("design"), dict) else {}
        out.append(f"<h3>{_e(ens.name)}</h3><p>tie-break <code>{_e(ens.data.get('tie_break', '?'))}</code>, design score "
                   f"(mean pairwise TM_sym) <b>{_e(fmt(d.get('score'), 4))}</b>, search {_e(d.get('search', '?'))}, "
                   f"matrix {_e(Path(str(d.get('matrix') or '?')).name)}.</p>")
        rows = []
        for m in ens.data["members"]:
            spec = (run.card_for(m.get("path")) or {}).get("spec", {})
            rows.append([m["id"], spec.get("arch", "?"), _quant(spec) if spec else "?", str(m.get("weights_sha256", ""))[:12]])
        out.append(_table(["member (design order)", "arch", "quantization", "weights sha256"], rows))
        if ens.candidates:
            crow = [[i + 1, " + ".join(map(str, c.get("members", []))), fmt(c.get("score"), 4), c.get("undefined_pairs", ""),
                     fmt(c.get("mean_clean_accuracy"), 4)] for i, c in enumerate(ens.candidates)]
            out.append(f"<p class=muted>Top candidates, {_e(ens.candidates_note)}:</p>")
            out.append(_table(["rank", "members", "mean TM_sym", "undefined pairs", "mean clean acc."], crow, num_from=2))
        else:
            out.append(f"<p class=muted>No candidate list: {_e(ens.candidates_note)}.</p>")
    return "".join(out) + "</section>"


def _section_robustness(run: Run) -> str:
    out = ['<section id="robustness"><h2>Robustness</h2>']
    if not run.evaluations:
        return out[0] + "<p class=muted>No ensemble evaluation in this run.</p></section>"
    out.append("<p class=muted>Adversarial accuracy = share of the evaluated images whose prediction on x_adv is right. "
               "Ensemble: under the ensemble attack (rule); members: white-box PGD on the member alone at the same eps; "
               "ratio = ensemble / member.</p>")
    for ev in run.evaluations:
        d = ev.data
        members = [str(m) for m in d["ensemble"]["members"]]
        s = d.get("settings") or {}
        out.append(f"<h3>{_e(ev.name)}</h3><p>{_e(d.get('n_images', '?'))} {_e(s.get('split', ''))} images; alpha "
                   f"{_e(s.get('alpha', '?'))}, {_e(s.get('steps', '?'))} steps; tie-break {_e(d['ensemble'].get('tie_break', '?'))}.</p>")
        out.append('<div class="figs">' + "".join(_img(p, p.name) for p in ev.pngs) + "</div>")
        clean = d["clean_accuracy"]
        out.append(_table(["clean accuracy", "ensemble", *members],
                          [["", fmt(clean.get("ensemble"), 4), *(fmt((clean.get("members") or {}).get(m), 4) for m in members)]],
                          num_from=1))
        rows = []
        for r in sorted(d["table"], key=lambda r: (r["attack"], r["eps"])):
            pgd = r.get("member_pgd_accuracy") or {}
            ratio = r.get("ratio") or {}
            rows.append([r["attack"], f"{r['eps']:g}", fmt(r.get("ensemble_accuracy"), 4), fmt(1 - r["ensemble_accuracy"], 4)
                         if r.get("ensemble_accuracy") is not None else "n/a",
                         *(f"{fmt(pgd.get(m), 4)} ({fmt_ratio(ratio.get(m))})" for m in members)])
        out.append(_table(["attack", "eps", "ensemble adv. acc.", "attack success", *(f"{m}: PGD acc. (ratio)" for m in members)],
                          rows, num_from=1))
        transfer = d.get("transfer") or {}
        if transfer:
            trows = [[f"{float(e):g}", t.get("source", "?"), fmt(t.get("ensemble_accuracy"), 4),
                      *(fmt((t.get("member_accuracy") or {}).get(m), 4) for m in members)] for e, t in transfer.items()]
            out.append("<p>Black-box transfer (PGD on an outside model):</p>")
            out.append(_table(["eps", "source", "ensemble", *members], trows, num_from=2))
    return "".join(out) + "</section>"


def _size(n: int | None) -> str:
    if n is None:
        return "n/a"
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def _section_export(run: Run) -> str:
    out = ['<section id="export"><h2>Export</h2>']
    if not run.exports:
        return out[0] + "<p class=muted>No ONNX export in this run.</p></section>"
    rows = []
    for ex in run.exports:
        meta, inf = ex.metadata or {}, ex.infer or {}
        lat = inf.get("latency_ms") or {}
        agree = (inf.get("agreement") or {}).get("mean_pairwise")
        rows.append([
            ex.onnx.name if ex.onnx else f"{ex.name}.onnx (absent)",
            _size(ex.onnx_bytes),
            " + ".join(str(m.get("id")) for m in meta.get("members", [])) or "?",
            meta.get("tie_break", "?"), meta.get("opset", "?"),
            f"{inf.get('n', '?')} {inf.get('split', '')}".strip() if inf else "not run",
            fmt(inf.get("accuracy"), 4), fmt(agree, 3), fmt(inf.get("images_per_s"), 0),
            fmt(lat.get("p50"), 2), fmt(lat.get("p99"), 2), inf.get("provider", "n/a"),
        ])
    out.append(_table(["file", "size", "members", "tie-break", "opset", "images", "accuracy", "member agreement",
                       "images/s", "p50 ms/batch", "p99 ms/batch", "provider"], rows, num_from=6))
    out.append("<p class=muted>The export runs input quantization per image; latency is per batch (session.run only).</p>")
    return "".join(out) + "</section>"


def _section_findings(findings: list[Finding]) -> str:
    out = ['<section id="findings"><h2>Findings</h2>', f"<p class=muted>{_e(LOW_NOTE)} Each verdict follows a fixed rule "
           "(trendcli.report.findings); nothing is tuned toward the paper.</p>",
           "<table><thead><tr><th>claim</th><th>paper</th><th>this run</th><th>holds?</th></tr></thead><tbody>"]
    css = {True: "holds", False: "nothold", None: "unmeasured"}
    for f in findings:
        out.append(f'<tr class="{css[f.holds]}"><td>{_e(f.claim)}</td><td>{_e(f.paper)}</td><td>{_e(f.this_run)}'
                   + (f'<br><span class=muted>{_e(f.source)}</span>' if f.source else "")
                   + f'</td><td class="v">{_e(f.verdict)}</td></tr>')
    return "".join(out) + "</tbody></table></section>"


def _footer(run: Run, generated: str) -> str:
    from trendcli.versions import library_versions

    now = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    trained = next((m.card.get("versions") for m in run.models if m.card and isinstance(m.card.get("versions"), dict)), None)
    out = [f"<footer><p>Generated {_e(generated)} by <code>trend report</code> with {_e(now)}.</p>"]
    if trained:
        out.append(f"<p>Models trained with {_e(', '.join(f'{k} {v}' for k, v in trained.items()))}.</p>")
    study_file = (run.study or {}).get("study")
    if study_file:
        out.append(f"<p>Study file: <code>{_e(study_file)}</code>; run directory <code>{_e(run.path)}</code>.</p>")
        path = Path(str(study_file))
        if path.is_file():
            out.append(f"<details><summary>{_e(path.name)}</summary><pre>{_e(path.read_text())}</pre></details>")
    return "".join(out) + "</footer>"


def render_html(run: Run, findings: list[Finding], generated: str | None = None) -> str:
    """The report page: one self-contained HTML document (images as data URIs, all text escaped)."""
    generated = generated or datetime.now(timezone.utc).isoformat(timespec="seconds")
    sections = [("summary", "Summary"), ("models", "Models"), ("transferability", "Transferability"),
                ("ensembles", "Ensembles"), ("robustness", "Robustness"), ("export", "Export"), ("findings", "Findings")]
    nav = "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in sections)
    body = [_section_summary(run, findings), _section_models(run), _section_transfer(run), _section_ensembles(run),
            _section_robustness(run), _section_export(run), _section_findings(findings), _footer(run, generated)]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>TREND report: {_e(run.name)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>TREND report: {_e(run.name)}</h1><p>dataset {_e(run.dataset)} &middot; run directory {_e(run.path)}</p></header>"
        f"<nav>{nav}</nav><main>{''.join(body)}</main></body></html>\n"
    )


# -- writing -----------------------------------------------------------------------------------------


def _write_text_atomic(path: Path, text: str) -> None:
    """Temp file beside ``path`` + rename; an existing file keeps its mode, a new one is 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Report:
    """What write_report wrote, and the findings."""

    index: Path
    findings_md: Path
    findings_json: Path
    findings: list[Finding]
    readme: Path | None = None
    readme_changed: bool = False

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the paths and each finding's verdict."""
        return {"index": str(self.index), "findings_md": str(self.findings_md), "findings_json": str(self.findings_json),
                "readme": str(self.readme) if self.readme else None, "readme_changed": self.readme_changed,
                "findings": [{"key": f.key, "verdict": f.verdict, "this_run": f.this_run} for f in self.findings]}


def findings_table(run: Run, findings: list[Finding]) -> str:
    """findings.md: a provenance line and the markdown table."""
    heading = (f"Findings of study `{run.name}` on {run.dataset}, produced by `trend report` from the run's files. "
               f"{LOW_NOTE}")
    return findings_markdown(findings, heading)


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, readme: str | Path | None = None) -> Report:
    """Write OUT/index.html, OUT/findings.md and OUT/findings.json for a run (default OUT: RUN/report).

    With ``readme``, also replace the README's findings table between its markers (splice_findings).
    """
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "report"
    findings = compute_findings(run)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    md = findings_table(run, findings)
    index = out / "index.html"
    _write_text_atomic(index, render_html(run, findings, generated))
    _write_text_atomic(out / "findings.md", md)
    record = {"study": run.name, "dataset": run.dataset, "run_dir": str(run.path), "generated": generated,
              "findings": [f.to_dict() for f in findings]}
    _write_text_atomic(out / "findings.json", json.dumps(record, indent=2) + "\n")
    report = Report(index, out / "findings.md", out / "findings.json", findings)
    if readme is not None:
        report.readme = Path(readme)
        report.readme_changed = splice_findings(readme, md)
    return report


def splice_findings(readme_path: str | Path, findings_md: str) -> bool:
    """Replace the text between the README's findings markers with ``findings_md`` (atomic write).

    The marker lines stay; everything outside them is kept byte for byte. Returns whether the
    file changed. UsageError when the markers are missing, repeated or out of order.
    """
    path = Path(readme_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    starts, ends = text.count(FINDINGS_START), text.count(FINDINGS_END)
    if starts != 1 or ends != 1:
        raise UsageError(f"{path} must hold exactly one {FINDINGS_START} and one {FINDINGS_END} line "
                         f"(found {starts} and {ends}); add them where the findings table goes")
    head, rest = text.split(FINDINGS_START)
    if FINDINGS_END not in rest:
        raise UsageError(f"{path}: {FINDINGS_END} comes before {FINDINGS_START}; put the end marker after the start")
    _, tail = rest.split(FINDINGS_END)
    new = f"{head}{FINDINGS_START}\n{findings_md.strip()}\n{FINDINGS_END}{tail}"
    if new == text:
        return False
    _write_text_atomic(path, new)
    return True
