"""Reading a study run's outputs for `trend report`: every file checked, absent sections empty.

Reads study.json, models/*/model.json, matrices/*.json (+ PNG heatmaps), ensembles/*.json,
evaluations/*/evaluation.json (+ PNGs), exports/*.onnx and *.infer.json, tasks/*.json and
last_run.json. A file that is present but malformed raises RunFileError naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trendcli.errors import TrendError, UsageError
from trendcli.stats import ratio

__all__ = ["EnsembleView", "EvaluationView", "ExportView", "MatrixView", "ModelRow", "Run", "RunFileError", "checked_number",
           "checked_object", "fail", "load_run", "read_json"]

class RunFileError(TrendError):
    """A file of a run directory is present but malformed; the message names the file."""


def read_json(path: Path) -> Any:
    """The JSON in ``path``; RunFileError naming the file when it is unreadable or not JSON."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise RunFileError(f"{path} is not UTF-8 text; rerun the stage that writes it") from None
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); rerun the stage that writes it") from None
    except OSError as exc:
        raise RunFileError(f"cannot read {path}: {exc.strerror}") from None


def fail(path: Path, message: str) -> RunFileError:
    """The error for a malformed run file: its path, what is wrong, and what to do."""
    return RunFileError(f"{path}: {message}; rerun the stage that writes it")


def checked_object(value: Any, path: Path, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object; else a RunFileError naming ``path`` and ``what``."""
    if not isinstance(value, dict):
        raise fail(path, f"{what} must be an object, got {type(value).__name__}")
    return value


def checked_number(value: Any, path: Path, what: str) -> float | None:
    """A JSON number (None stays None); anything else is a malformed file."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(path, f"{what} must be a number, got {value!r}")
    return float(value)


def _square(value: Any, k: int, path: Path, what: str) -> np.ndarray:
    """A k x k list of numbers or nulls as a float array with NaN for null."""
    if not isinstance(value, list) or len(value) != k or any(not isinstance(r, list) or len(r) != k for r in value):
        raise fail(path, f"{what!r} must be a {k}x{k} list (one row and column per name)")
    return np.array([[np.nan if v is None else checked_number(v, path, what) for v in row] for row in value], dtype=np.float64)


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
        """The study's dataset; for a run made with plain commands, the models' (same in every card),
        else the matrices' attack records'."""
        if (self.study or {}).get("dataset"):
            return str(self.study["dataset"])
        found = {str(m.card["spec"]["dataset"]) for m in self.models if m.card and isinstance(m.card.get("spec"), dict) and m.card["spec"].get("dataset")}
        if not found:
            found = {str(mx.data["attack"]["dataset"]) for mx in self.matrices
                     if isinstance(mx.data.get("attack"), dict) and mx.data["attack"].get("dataset")}
        return found.pop() if len(found) == 1 else "?"

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
            raise fail(run_dir / "study.json", "'models' must be a list")
        for e in entries:
            e = checked_object(e, run_dir / "study.json", "a 'models' entry")
            if not isinstance(e.get("name"), str):
                raise fail(run_dir / "study.json", "every 'models' entry needs a 'name'")
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
            card = checked_object(read_json(card_path), card_path, "the model card")
            if not isinstance(card.get("spec"), dict):
                raise fail(card_path, "the model card has no 'spec' object")
            acc = card.get("accuracy")
            if acc is not None:
                acc = checked_object(acc, card_path, "'accuracy'")
                for key in ("val", "test"):
                    checked_number(acc.get(key), card_path, f"accuracy.{key}")
        rows.append(ModelRow(name, d, card))
    return rows


def _matrix_entries(run: Run, data: dict[str, Any], names: list[str], path: Path) -> list[dict[str, Any]]:
    models = data.get("models") or []
    dirs = data.get("model_dirs") or [None] * len(names)
    if not isinstance(models, list) or not isinstance(dirs, list):
        raise fail(path, "'models' and 'model_dirs' must be lists")
    out = []
    for i, name in enumerate(names):
        entry = models[i] if i < len(models) and isinstance(models[i], dict) else {}
        card = run.card_for(dirs[i] if i < len(dirs) else None) or {}
        spec = entry.get("spec") if isinstance(entry.get("spec"), dict) else card.get("spec") or {}
        train = entry.get("train") if isinstance(entry.get("train"), dict) else card.get("train") or {}
        out.append({"name": name, "spec": spec, "train": train})
    return out


def _load_matrix(run: Run, path: Path) -> MatrixView:
    from trendcli.transfer.matrix import SCHEMA

    data = checked_object(read_json(path), path, "the matrix file")
    if data.get("schema") not in (None, SCHEMA):
        raise fail(path, f"schema {data.get('schema')!r} is not {SCHEMA!r}")
    names = data.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise fail(path, "'names' must be a non-empty list of model names")
    k = len(names)
    n_g = _square(data.get("n_g"), k, path, "n_g")
    if "tm" in data:
        tm = _square(data["tm"], k, path, "tm")
    else:
        n_t = _square(data.get("n_t"), k, path, "n_t")
        tm = ratio(n_t, n_g)
    finite = tm[np.isfinite(tm)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise fail(path, "'tm' values must lie in [0, 1]")
    if not isinstance(data.get("clean_accuracy", {}), dict):
        raise fail(path, "'clean_accuracy' must be an object")
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
    from trendcli.ensemble.members import FORMAT, FORMAT_V1

    data = checked_object(read_json(path), path, "the ensemble file")
    if data.get("format") not in (FORMAT, FORMAT_V1):
        raise fail(path, f"format {data.get('format')!r} is not {FORMAT!r}")
    members = data.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) and "id" in m for m in members):
        raise fail(path, "'members' must be a non-empty list of objects with an 'id'")
    candidates, note = _design_candidates(run, data, path)
    return EnsembleView(path.stem, path, data, candidates, note)


def _load_evaluation(path: Path) -> EvaluationView:
    from trendcli.ensemble.evaluation import FORMAT

    data = checked_object(read_json(path), path, "the evaluation file")
    if data.get("format") != FORMAT:
        raise fail(path, f"format {data.get('format')!r} is not {FORMAT!r}")
    ens = checked_object(data.get("ensemble"), path, "'ensemble'")
    if not isinstance(ens.get("members"), list):
        raise fail(path, "'ensemble.members' must be a list")
    clean = checked_object(data.get("clean_accuracy"), path, "'clean_accuracy'")
    checked_number(clean.get("ensemble"), path, "clean_accuracy.ensemble")
    for m, v in checked_object(clean.get("members", {}), path, "'clean_accuracy.members'").items():
        checked_number(v, path, f"clean_accuracy.members.{m}")
    table = data.get("table")
    if not isinstance(table, list):
        raise fail(path, "'table' must be a list of rows")
    for row in table:
        row = checked_object(row, path, "a 'table' row")
        if not isinstance(row.get("attack"), str) or checked_number(row.get("eps"), path, "table.eps") is None:
            raise fail(path, "every 'table' row needs 'attack' and 'eps'")
        checked_number(row.get("ensemble_accuracy"), path, "table.ensemble_accuracy")
        for m, v in checked_object(row.get("member_pgd_accuracy", {}), path, "'table.member_pgd_accuracy'").items():
            checked_number(v, path, f"table.member_pgd_accuracy.{m}")
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
        infer = checked_object(read_json(infer_path), infer_path, "the inference record")
        if checked_number(infer.get("accuracy"), infer_path, "accuracy") is None or not isinstance(infer.get("n"), int):
            raise fail(infer_path, "needs 'accuracy' (a number) and 'n' (the number of images)")
        for key in ("images_per_s",):
            checked_number(infer.get(key), infer_path, key)
        lat = infer.get("latency_ms")
        if lat is not None:
            for key, v in checked_object(lat, infer_path, "'latency_ms'").items():
                checked_number(v, infer_path, f"latency_ms.{key}")
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
        study = checked_object(read_json(run_dir / "study.json"), run_dir / "study.json", "the study record")
    run = Run(run_dir, study)
    run.models = _load_models(run_dir, study)
    run.matrices = [_load_matrix(run, p) for p in sorted((run_dir / "matrices").glob("*.json"))]
    run.ensembles = [_load_ensemble(run, p) for p in sorted((run_dir / "ensembles").glob("*.json"))]
    run.evaluations = [_load_evaluation(p) for p in sorted((run_dir / "evaluations").glob("*/evaluation.json"))]
    exports = run_dir / "exports"
    stems = sorted({p.name[: -len(".infer.json")] for p in exports.glob("*.infer.json")} | {p.stem for p in exports.glob("*.onnx")})
    run.exports = [_load_export(run_dir, s) for s in stems]
    if (run_dir / "last_run.json").is_file():
        run.last_run = checked_object(read_json(run_dir / "last_run.json"), run_dir / "last_run.json", "the last run record")
    for p in sorted((run_dir / "tasks").glob("*.json")):
        run.task_records.append(checked_object(read_json(p), p, "a task marker"))
    return run
