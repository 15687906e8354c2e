"""Parse and validate a study file (TOML). Errors name the key and, where found, the line."""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trendcli.errors import StudyError
from trendcli.registry import canonical
from trendcli.zoo.spec import FULL_PRECISION

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Axes of a [zoo] product, and the train settings a model may override.
ZOO_AXES = ("arch", "input_quant", "weight_bits", "act_bits", "optimizer", "seed", "width")
TRAIN_KEYS = {
    "epochs", "batch_size", "lr", "weight_decay", "momentum", "limit_train", "augment", "split_seed",
    "per_image", "quantize_first", "pretrained",
}
MODEL_KEYS = set(ZOO_AXES) | TRAIN_KEYS | {"name"}
STAGES = ("train", "attack", "matrix", "design", "evaluate", "export", "report")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config: dict[str, Any]  # TrainConfig fields (dataset and device filled by the runner)


@dataclass(frozen=True)
class AttackEntry:
    name: str
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class MatrixEntry:
    name: str
    attack: str
    models: tuple[str, ...]
    limit: int | None
    split: str
    batch_size: int
    group_by: tuple[str, ...]


@dataclass(frozen=True)
class EnsembleEntry:
    name: str
    matrix: str
    size: int
    require: tuple[str, ...]
    candidates: tuple[str, ...]
    tie_break: str


@dataclass(frozen=True)
class EvaluationEntry:
    name: str
    ensemble: str
    attacks: tuple[str, ...]
    eps: tuple[float, ...]
    limit: int | None
    params: dict[str, Any]
    transfer_from: str | None
    per_image: bool


@dataclass(frozen=True)
class ExportEntry:
    name: str
    ensemble: str
    tie_break: str
    opset: int | None
    infer_limit: int | None


@dataclass
class Study:
    """A validated study: everything `trend run` needs."""

    path: Path
    name: str
    dataset: str
    run_dir: Path
    data_dir: Path | None
    device: str
    cpus_per_task: int
    store: Path
    layout: str = "auto"
    models: list[ModelEntry] = field(default_factory=list)
    attacks: list[AttackEntry] = field(default_factory=list)
    matrices: list[MatrixEntry] = field(default_factory=list)
    ensembles: list[EnsembleEntry] = field(default_factory=list)
    evaluations: list[EvaluationEntry] = field(default_factory=list)
    exports: list[ExportEntry] = field(default_factory=list)
    report: bool = True

    def model(self, name: str) -> ModelEntry:
        return next(m for m in self.models if m.name == name)


class _Checker:
    """Finds the line of a key in the study text for error messages."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def line_of(self, table: str, key: str | None, index: int = 0) -> int | None:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        seen = -1
        for i, line in enumerate(self.lines):
            if header.match(line):
                seen += 1
                if seen == index:
                    if key is None:
                        return i + 1
                    for j in range(i + 1, len(self.lines)):
                        if re.match(r"^\s*\[", self.lines[j]):
                            break
                        if re.match(rf"^\s*{re.escape(key)}\s*=", self.lines[j]):
                            return j + 1
                    return i + 1
        return None

    def fail(self, table: str, key: str | None, message: str, index: int = 0) -> StudyError:
        line = self.line_of(table, key, index)
        where = f"{self.path}:{line}" if line else str(self.path)
        what = f"[{table}]" + (f".{key}" if key else "")
        return StudyError(f"{where}: {what}: {message}")


def _get(c: _Checker, table: dict, tname: str, key: str, kind: type | tuple, default: Any = ..., index: int = 0) -> Any:
    if key not in table:
        if default is ...:
            raise c.fail(tname, None, f"missing required key {key!r}", index)
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise c.fail(tname, key, f"expected {names}, got {value!r}", index)
    return value


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]


def _check_unknown(c: _Checker, table: dict, tname: str, allowed: set[str], index: int = 0) -> None:
    for key in table:
        if key not in allowed:
            raise c.fail(tname, key, f"unknown key; allowed: {', '.join(sorted(allowed))}", index)


def _model_name(cfg: dict[str, Any]) -> str:
    """A readable default name: fp, q1, ht, w2, a2, adam, s1 ... joined by '-'."""
    parts = [cfg.get("arch", "smallcnn")]
    parts.append(cfg.get("input_quant", "fp"))
    if cfg.get("weight_bits", FULL_PRECISION) != FULL_PRECISION:
        parts.append(f"w{cfg['weight_bits']}")
    if cfg.get("act_bits", FULL_PRECISION) != FULL_PRECISION:
        parts.append(f"a{cfg['act_bits']}")
    if cfg.get("optimizer", "sgd") != "sgd":
        parts.append(cfg["optimizer"])
    if cfg.get("width", 1.0) != 1.0:
        parts.append(f"x{cfg['width']:g}")
    parts.append(f"s{cfg.get('seed', 0)}")
    return "-".join(str(p) for p in parts).replace("_", "")


def load_study(path: Path | str, run_dir: Path | str | None = None) -> Study:
    """Read and validate a study file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise StudyError(f"cannot read study file {path}: {exc.strerror}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from None
    c = _Checker(path, text)
    top_allowed = {"study", "train", "zoo", "models", "attacks", "matrices", "ensembles", "evaluations", "exports", "report"}
    for key in doc:
        if key not in top_allowed:
            raise StudyError(f"{path}: unknown table [{key}]; allowed: {', '.join(sorted(top_allowed))}")

    st = doc.get("study", {})
    _check_unknown(c, st, "study", {"name", "dataset", "run_dir", "data_dir", "device", "cpus_per_task", "store", "layout"})
    name = _get(c, st, "study", "name", str, path.stem)
    dataset = canonical(_get(c, st, "study", "dataset", str, "fashion_mnist"))
    rd = Path(run_dir) if run_dir else Path(_get(c, st, "study", "run_dir", str, f"runs/{name}"))
    data_dir = _get(c, st, "study", "data_dir", str, None)
    store = Path(_get(c, st, "study", "store", str, str(rd / "adv")))
    study = Study(
        path=path, name=name, dataset=dataset, run_dir=rd, data_dir=Path(data_dir) if data_dir else None,
        device=_get(c, st, "study", "device", str, "auto"),
        cpus_per_task=_get(c, st, "study", "cpus_per_task", int, 0), store=store,
        layout=_get(c, st, "study", "layout", str, "auto"),
        report=bool(doc.get("report", {}).get("enabled", True)) if isinstance(doc.get("report"), dict) else True,
    )

    train_defaults = doc.get("train", {})
    _check_unknown(c, train_defaults, "train", TRAIN_KEYS | {"optimizer"})
    seen: dict[str, int] = {}

    def add_model(cfg: dict[str, Any], table: str, index: int) -> None:
        merged = {**train_defaults, **cfg}
        for key in ("arch", "input_quant", "optimizer"):
            if key in merged:
                merged[key] = canonical(str(merged[key]))
        for key in ("epochs", "batch_size", "weight_bits", "act_bits", "seed"):
            if key in merged and (not isinstance(merged[key], int) or isinstance(merged[key], bool) or merged[key] < (0 if key == "seed" else 1)):
                raise c.fail(table, key, f"expected a positive integer, got {merged[key]!r}", index)
        mname = str(cfg.get("name") or _model_name(merged))
        if mname in seen:
            raise c.fail(table, "name", f"model name {mname!r} is used twice; give one an explicit name", index)
        seen[mname] = 1
        merged.pop("name", None)
        study.models.append(ModelEntry(mname, merged))

    for i, zoo in enumerate(_as_list(doc.get("zoo", []))):
        _check_unknown(c, zoo, "zoo", set(ZOO_AXES) | TRAIN_KEYS, i)
        axes = {k: _as_list(zoo[k]) for k in ZOO_AXES if k in zoo}
        fixed = {k: v for k, v in zoo.items() if k not in ZOO_AXES}
        for combo in itertools.product(*axes.values()):
            add_model({**fixed, **dict(zip(axes, combo))}, "zoo", i)
    for i, m in enumerate(_as_list(doc.get("models", []))):
        _check_unknown(c, m, "models", MODEL_KEYS, i)
        add_model(dict(m), "models", i)
    if not study.models:
        raise StudyError(f"{path}: the study has no models; add a [zoo] table or [[models]] entries")
    model_names = [m.name for m in study.models]

    def names_in(c_table: str, value: Any, index: int, key: str, known: list[str], what: str) -> tuple[str, ...]:
        if value == "all":
            return tuple(known)
        items = tuple(_as_list(value))
        for item in items:
            if item not in known:
                raise c.fail(c_table, key, f"unknown {what} {item!r}; known: {', '.join(known)}", index)
        return items

    for i, a in enumerate(_as_list(doc.get("attacks", []))):
        aname = _get(c, a, "attacks", "name", str, index=i)
        method = canonical(_get(c, a, "attacks", "method", str, aname, index=i))
        params = {k: v for k, v in a.items() if k not in ("name", "method")}
        study.attacks.append(AttackEntry(aname, method, params))
    attack_names = [a.name for a in study.attacks]

    for i, m in enumerate(_as_list(doc.get("matrices", []))):
        _check_unknown(c, m, "matrices", {"name", "attack", "models", "limit", "split", "batch_size", "group_by"}, i)
        study.matrices.append(MatrixEntry(
            name=_get(c, m, "matrices", "name", str, index=i),
            attack=names_in("matrices", _get(c, m, "matrices", "attack", str, index=i), i, "attack", attack_names, "attack")[0],
            models=names_in("matrices", m.get("models", "all"), i, "models", model_names, "model"),
            limit=_get(c, m, "matrices", "limit", int, None, index=i),
            split=_get(c, m, "matrices", "split", str, "test", index=i),
            batch_size=_get(c, m, "matrices", "batch_size", int, 256, index=i),
            group_by=tuple(_as_list(m.get("group_by", []))),
        ))
    matrix_names = [m.name for m in study.matrices]

    for i, e in enumerate(_as_list(doc.get("ensembles", []))):
        _check_unknown(c, e, "ensembles", {"name", "matrix", "size", "require", "candidates", "tie_break"}, i)
        size = _get(c, e, "ensembles", "size", int, index=i)
        if size < 2:
            raise c.fail("ensembles", "size", f"an ensemble needs at least 2 members, got {size}", i)
        study.ensembles.append(EnsembleEntry(
            name=_get(c, e, "ensembles", "name", str, index=i),
            matrix=names_in("ensembles", _get(c, e, "ensembles", "matrix", str, index=i), i, "matrix", matrix_names, "matrix")[0],
            size=size,
            require=names_in("ensembles", e.get("require", []), i, "require", model_names, "model"),
            candidates=names_in("ensembles", e.get("candidates", []), i, "candidates", model_names, "model"),
            tie_break=_get(c, e, "ensembles", "tie_break", str, "first", index=i),
        ))
    ensemble_names = [e.name for e in study.ensembles]

    for i, ev in enumerate(_as_list(doc.get("evaluations", []))):
        known_keys = {"name", "ensemble", "attacks", "eps", "limit", "transfer_from", "per_image", "alpha", "steps", "random_start", "seed"}
        _check_unknown(c, ev, "evaluations", known_keys, i)
        eps = _as_list(_get(c, ev, "evaluations", "eps", (list, float, int), index=i))
        if not eps or any(not isinstance(x, (int, float)) or not 0 < x <= 1 for x in eps):
            raise c.fail("evaluations", "eps", f"expected numbers in (0, 1], got {eps!r}", i)
        tf = ev.get("transfer_from")
        study.evaluations.append(EvaluationEntry(
            name=_get(c, ev, "evaluations", "name", str, index=i),
            ensemble=names_in("evaluations", _get(c, ev, "evaluations", "ensemble", str, index=i), i, "ensemble", ensemble_names, "ensemble")[0],
            attacks=tuple(canonical(a) for a in _as_list(ev.get("attacks", ["agd", "ugd", "dag", "empir"]))),
            eps=tuple(float(x) for x in eps),
            limit=_get(c, ev, "evaluations", "limit", int, None, index=i),
            params={k: ev[k] for k in ("alpha", "steps", "random_start", "seed") if k in ev},
            transfer_from=names_in("evaluations", tf, i, "transfer_from", model_names, "model")[0] if tf else None,
            per_image=bool(ev.get("per_image", False)),
        ))

    for i, ex in enumerate(_as_list(doc.get("exports", []))):
        _check_unknown(c, ex, "exports", {"name", "ensemble", "tie_break", "opset", "infer_limit"}, i)
        study.exports.append(ExportEntry(
            name=_get(c, ex, "exports", "name", str, index=i),
            ensemble=names_in("exports", _get(c, ex, "exports", "ensemble", str, index=i), i, "ensemble", ensemble_names, "ensemble")[0],
            tie_break=_get(c, ex, "exports", "tie_break", str, "first", index=i),
            opset=_get(c, ex, "exports", "opset", int, None, index=i),
            infer_limit=_get(c, ex, "exports", "infer_limit", int, None, index=i),
        ))
    for table, entries in (("attacks", study.attacks), ("matrices", study.matrices), ("ensembles", study.ensembles),
                           ("evaluations", study.evaluations), ("exports", study.exports)):
        names = [e.name for e in entries]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise c.fail(table, "name", f"name {dup!r} is used twice", names.index(dup))
    return study
