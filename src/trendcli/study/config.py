"""Parse and validate a whole study file (TOML) before any work starts.

Every error names file:line, the table and key, and what is allowed: types (a string is not a
boolean), ranges, names that become paths, references between tables, and registry names.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trendcli.errors import StudyError, TrendError
from trendcli.registry import canonical, get_registry
from trendcli.study.fields import StudyText, Table, as_list, check_name
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
STAGES = ("train", "attack", "matrix", "audit", "design", "evaluate", "export", "report")


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
class AuditEntry:
    name: str
    attack: str
    target: str  # a model of the study, or a model directory (absolute path)
    target_is_model: bool
    surrogates: tuple[str, ...]
    limit: int | None
    split: str
    batch_size: int


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
    protocol: str = "standard"  # or "worst-case" (trendcli.ensemble.worst_case)
    worst_case: dict[str, Any] = field(default_factory=dict)  # WorstCaseConfig fields given in the study


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
    audits: list[AuditEntry] = field(default_factory=list)
    ensembles: list[EnsembleEntry] = field(default_factory=list)
    evaluations: list[EvaluationEntry] = field(default_factory=list)
    exports: list[ExportEntry] = field(default_factory=list)
    report: bool = True

    def model(self, name: str) -> ModelEntry:
        return next(m for m in self.models if m.name == name)


TABLES = ("study", "train", "zoo", "models", "attacks", "matrices", "audits", "ensembles", "evaluations", "exports", "report")
STUDY_KEYS = {"name", "dataset", "run_dir", "data_dir", "device", "cpus_per_task", "store", "layout"}
LAYOUTS = ("auto", "contiguous", "channels_last")
SPLITS = ("test", "val")
OPTIMIZERS = ("sgd", "adam")
GROUP_FIELDS = tuple(sorted(set(ZOO_AXES) | TRAIN_KEYS | {"id", "name", "dataset"}))
#: The worst-case protocol's keys of an [[evaluations]] table -> WorstCaseConfig fields.
WORST_CASE_KEYS = {"worst_case_eps": "eps", "worst_case_limit": "limit", "apgd_iter": "apgd_iter",
                   "apgd_targets": "apgd_targets", "square_queries": "square_queries",
                   "masking_images": "masking_images", "large_eps": "large_eps"}
EVAL_KEYS = {"name", "ensemble", "attacks", "eps", "limit", "transfer_from", "per_image", "alpha", "steps",
             "random_start", "seed", "protocol", *WORST_CASE_KEYS}


def _bits(table: Table, key: str, value: Any) -> None:
    bits = table.check_integer(key, value, 1, FULL_PRECISION)
    if bits > 16 and bits != FULL_PRECISION:
        raise table.fail(key, f"expected 1..16 bits, or {FULL_PRECISION} for full precision, got {bits}")


def _registry_name(table: Table, key: str, value: Any, kind: str) -> None:
    if not isinstance(value, str):
        raise table.fail(key, f"expected a string, got {value!r}")
    known = get_registry().names(kind)
    if canonical(value) not in known:
        raise table.fail(key, f"unknown {kind} {value!r}; known: {', '.join(known)}")


def _check_model_value(table: Table, key: str, value: Any) -> None:
    """One training / zoo-axis value: its type and range (registry names included)."""
    if key in ("epochs", "batch_size", "limit_train"):
        table.check_integer(key, value, 1)
    elif key in ("seed", "split_seed"):
        table.check_integer(key, value, 0)
    elif key in ("augment", "per_image", "quantize_first", "pretrained"):
        if not isinstance(value, bool):
            raise table.fail(key, f"expected true or false (unquoted), got {value!r}")
    elif key == "lr" or key == "width":
        table.check_number(key, value, 0, None, low_open=True)
    elif key == "weight_decay":
        table.check_number(key, value, 0)
    elif key == "momentum":
        table.check_number(key, value, 0, 1)
    elif key in ("weight_bits", "act_bits"):
        _bits(table, key, value)
    elif key == "optimizer":
        if not isinstance(value, str) or canonical(value) not in OPTIMIZERS:
            raise table.fail(key, f"expected one of {', '.join(OPTIMIZERS)}, got {value!r}")
    elif key == "arch":
        _registry_name(table, key, value, "architecture")
    elif key == "input_quant":
        _registry_name(table, key, value, "input quantizer")


def _check_model_table(table: Table, axes: bool = False) -> None:
    for key, value in table.data.items():
        if key == "name":
            table.name_value("name")
            continue
        for item in (as_list(value) if axes and key in ZOO_AXES else [value]):
            _check_model_value(table, key, item)


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


def _read(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise StudyError(f"study file {path} is a directory; give the .toml file") from None
    except OSError as exc:
        raise StudyError(f"cannot read study file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError(f"{path}: not UTF-8 text (byte {exc.start}); save the study file as UTF-8") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from None
    for key in doc:
        if key not in TABLES:
            raise StudyError(f"{path}: unknown table [{key}]; allowed: {', '.join(sorted(TABLES))}")
    return text, doc


def _resolve(base: Path, value: str) -> Path:
    """A path from the study file: relative ones resolve against the study file's directory."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _parse_study_table(text: StudyText, doc: dict[str, Any], path: Path, run_dir: Path | str | None) -> Study:
    st = Table(text, "study", doc.get("study", {}), allowed=STUDY_KEYS)
    name = st.name_value("name", path.stem)
    if check_name(name):
        raise StudyError(f"{path}: the study file's name {name!r} is not a valid study name; set [study].name")
    dataset = st.string("dataset", "fashion_mnist", normalize=canonical)
    datasets = get_registry().names("dataset")
    if dataset not in datasets:
        raise st.fail("dataset", f"unknown dataset {dataset!r}; known: {', '.join(datasets)}")
    base = path.resolve().parent
    rd = Path(run_dir) if run_dir else _resolve(base, st.string("run_dir", f"runs/{name}"))
    data_dir = st.string("data_dir", None)
    store = st.string("store", None)
    device = st.string("device", "auto")
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise st.fail("device", f"expected auto, cpu, cuda or cuda:N, got {device!r}")
    report = Table(text, "report", doc.get("report", {}), allowed={"enabled"})
    return Study(
        path=path, name=name, dataset=dataset, run_dir=rd,
        data_dir=_resolve(base, data_dir) if data_dir else None, device=device,
        cpus_per_task=st.integer("cpus_per_task", 0, minimum=0),
        store=_resolve(base, store) if store else rd / "adv",
        layout=st.string("layout", "auto", choices=LAYOUTS),
        report=report.boolean("enabled", True),
    )


def _parse_models(text: StudyText, doc: dict[str, Any], study: Study) -> None:
    train = Table(text, "train", doc.get("train", {}), allowed=TRAIN_KEYS | {"optimizer"})
    _check_model_table(train)
    seen: set[str] = set()

    def add(cfg: dict[str, Any], table: Table) -> None:
        merged = {**train.data, **cfg}
        for key in ("arch", "input_quant", "optimizer"):
            if key in merged:
                merged[key] = canonical(str(merged[key]))
        mname = str(cfg.get("name") or _model_name(merged))
        if check_name(mname):
            raise table.fail("name", f"the model name {mname!r} is not a valid name; {check_name(mname)}")
        if mname in seen:
            raise table.fail("name", f"model name {mname!r} is used twice; give one an explicit name")
        seen.add(mname)
        merged.pop("name", None)
        study.models.append(ModelEntry(mname, merged))

    for i, raw in enumerate(as_list(doc.get("zoo", []))):
        zoo = Table(text, "zoo", raw, i, allowed=set(ZOO_AXES) | TRAIN_KEYS)
        _check_model_table(zoo, axes=True)
        axes = {k: as_list(zoo.data[k]) for k in ZOO_AXES if k in zoo.data}
        fixed = {k: v for k, v in zoo.data.items() if k not in ZOO_AXES}
        for combo in itertools.product(*axes.values()):
            add({**fixed, **dict(zip(axes, combo))}, zoo)
    for i, raw in enumerate(as_list(doc.get("models", []))):
        model = Table(text, "models", raw, i, allowed=MODEL_KEYS)
        _check_model_table(model)
        add(dict(model.data), model)
    if not study.models:
        raise StudyError(f"{study.path}: the study has no models; add a [zoo] table or [[models]] entries")


def _check_attack_params(table: Table, method: str, params: dict[str, Any]) -> None:
    """Build the attack once, so that a typo'd key or a bad value fails now, not after training."""
    if "eps" in params:
        table.check_number("eps", params["eps"], 0, 1, low_open=True)
    for key in ("steps", "restarts"):
        if key in params:
            table.check_integer(key, params[key], 1)
    factory = get_registry().factory("attack", method)
    try:
        factory(**params)
    except TypeError:
        import dataclasses

        allowed = [f.name for f in dataclasses.fields(factory)] if dataclasses.is_dataclass(factory) else []
        bad = next((k for k in params if k not in allowed), None) if allowed else None
        key = bad or next(iter(params), None)
        listing = f"; allowed: {', '.join(allowed)}" if allowed else ""
        raise table.fail(key, f"attack {method!r} takes no parameter {key!r}{listing}") from None
    except (TrendError, ValueError) as exc:
        raise table.fail(None, f"attack {method!r}: {exc}") from None


def _parse_attacks(text: StudyText, doc: dict[str, Any], study: Study) -> None:
    methods = get_registry().names("attack")
    for i, raw in enumerate(as_list(doc.get("attacks", []))):
        a = Table(text, "attacks", raw, i)
        aname = a.name_value("name")
        method = a.string("method", aname, normalize=canonical)
        if method not in methods:
            raise a.fail("method" if a.has("method") else "name", f"unknown attack {method!r}; known: {', '.join(methods)}")
        params = {k: v for k, v in a.data.items() if k not in ("name", "method")}
        _check_attack_params(a, method, params)
        study.attacks.append(AttackEntry(aname, method, params))


def _parse_matrices(text: StudyText, doc: dict[str, Any], study: Study) -> None:
    allowed = {"name", "attack", "models", "limit", "split", "batch_size", "group_by"}
    for i, raw in enumerate(as_list(doc.get("matrices", []))):
        m = Table(text, "matrices", raw, i, allowed=allowed)
        models = m.names_in("models", [x.name for x in study.models], "model", "all", allow_all=True)
        if len(models) < 2:
            raise m.fail("models", f"a matrix needs at least 2 models, got {len(models)}")
        study.matrices.append(MatrixEntry(
            name=m.name_value("name"),
            attack=m.names_in("attack", [a.name for a in study.attacks], "attack")[0],
            models=models,
            limit=m.integer("limit", None, minimum=1),
            split=m.string("split", "test", choices=SPLITS),
            batch_size=m.integer("batch_size", 256, minimum=1),
            group_by=m.names_in("group_by", GROUP_FIELDS, "group_by field", []) if m.has("group_by") else (),
        ))


def _parse_audits(text: StudyText, doc: dict[str, Any], study: Study) -> None:
    """[[audits]]: the transfer risk of one target (a study model or a model directory) from surrogates."""
    allowed = {"name", "attack", "target", "surrogates", "limit", "split", "batch_size"}
    models = [x.name for x in study.models]
    for i, raw in enumerate(as_list(doc.get("audits", []))):
        a = Table(text, "audits", raw, i, allowed=allowed)
        target = a.string("target")
        is_model = target in models
        if not is_model:
            path = _resolve(study.path.parent, target)
            if not (path / "model.json").is_file():
                raise a.fail("target", f"{target!r} is neither a model of the study ({', '.join(models)}) nor a model "
                                       f"directory (no {path / 'model.json'}); import it first with `trend import`")
            target = str(path.resolve())
        surrogates = tuple(n for n in a.names_in("surrogates", models, "model", "all", allow_all=True) if n != target)
        if not surrogates:
            raise a.fail("surrogates", "an audit needs at least one surrogate model besides the target")
        study.audits.append(AuditEntry(
            name=a.name_value("name"), attack=a.names_in("attack", [x.name for x in study.attacks], "attack")[0],
            target=target, target_is_model=is_model, surrogates=surrogates,
            limit=a.integer("limit", None, minimum=1), split=a.string("split", "test", choices=SPLITS),
            batch_size=a.integer("batch_size", 256, minimum=1),
        ))


def _parse_ensembles(text: StudyText, doc: dict[str, Any], study: Study) -> None:
    from trendcli.ensemble.vote import TIE_BREAKS

    for i, raw in enumerate(as_list(doc.get("ensembles", []))):
        e = Table(text, "ensembles", raw, i, allowed={"name", "matrix", "size", "require", "candidates", "tie_break"})
        matrix = e.names_in("matrix", [m.name for m in study.matrices], "matrix")[0]
        in_matrix = list(next(m for m in study.matrices if m.name == matrix).models)
        require = e.names_in("require", in_matrix, f"model of matrix {matrix!r}", [])
        candidates = e.names_in("candidates", in_matrix, f"model of matrix {matrix!r}", [])
        size = e.integer("size")
        if size < 2:
            raise e.fail("size", f"an ensemble needs at least 2 members, got {size}")
        pool = len(candidates) if candidates else len(in_matrix)
        if size > pool:
            raise e.fail("size", f"size {size} exceeds the {pool} candidate models of matrix {matrix!r}")
        if len(require) > size:
            raise e.fail("require", f"{len(require)} required models do not fit an ensemble of size {size}")
        study.ensembles.append(EnsembleEntry(
            name=e.name_value("name"), matrix=matrix, size=size, require=require, candidates=candidates,
            tie_break=e.string("tie_break", "paper", choices=TIE_BREAKS),
        ))


def _parse_evaluations(text: StudyText, doc: dict[str, Any], study: Study) -> None:
    rules = get_registry().names("direction rule")
    for i, raw in enumerate(as_list(doc.get("evaluations", []))):
        ev = Table(text, "evaluations", raw, i, allowed=EVAL_KEYS)
        attacks = tuple(canonical(a) if isinstance(a, str) else a for a in as_list(ev.data.get("attacks", ["agd", "ugd", "dag", "empir"])))
        for a in attacks:
            if a not in rules:
                raise ev.fail("attacks", f"unknown ensemble attack rule {a!r}; known: {', '.join(rules)}")
        if not ev.has("eps"):
            raise ev.fail(None, "missing required key 'eps'")
        eps = as_list(ev.data["eps"])
        if not eps or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x <= 1 for x in eps):
            raise ev.fail("eps", f"expected numbers in (0, 1], got {eps!r}")
        params = {}
        if ev.has("alpha"):
            params["alpha"] = ev.number("alpha", low=0, low_open=True)
        if ev.has("steps"):
            params["steps"] = ev.integer("steps", minimum=1)
        if ev.has("random_start"):
            params["random_start"] = ev.boolean("random_start")
        if ev.has("seed"):
            params["seed"] = ev.integer("seed", minimum=0)
        tf = ev.names_in("transfer_from", [m.name for m in study.models], "model") if ev.has("transfer_from") else None
        protocol, worst = _parse_worst_case(ev, eps)
        study.evaluations.append(EvaluationEntry(
            name=ev.name_value("name"),
            ensemble=ev.names_in("ensemble", [e.name for e in study.ensembles], "ensemble")[0],
            attacks=attacks, eps=tuple(float(x) for x in eps), limit=ev.integer("limit", None, minimum=1),
            params=params, transfer_from=tf[0] if tf else None, per_image=ev.boolean("per_image", False),
            protocol=protocol, worst_case=worst,
        ))


def _parse_worst_case(ev: Table, eps: list[Any]) -> tuple[str, dict[str, Any]]:
    """``protocol`` and the worst-case keys (checked now by WorstCaseConfig, before any training)."""
    from trendcli.ensemble.worst_case import PROTOCOLS, WorstCaseConfig

    protocol = ev.string("protocol", "standard", choices=PROTOCOLS)
    given = [k for k in WORST_CASE_KEYS if ev.has(k)]
    if given and protocol != "worst-case":
        raise ev.fail(given[0], f"{given[0]!r} belongs to protocol = \"worst-case\"; add it or drop the key")
    worst = {WORST_CASE_KEYS[k]: ev.data[k] for k in given}
    try:
        if protocol == "worst-case":
            WorstCaseConfig(**worst).validated([float(x) for x in eps])
    except TrendError as exc:
        key = next((k for k in given if WORST_CASE_KEYS[k] in str(exc) or k in str(exc)), None)
        raise ev.fail(key, str(exc)) from None
    return protocol, worst


def _parse_exports(text: StudyText, doc: dict[str, Any], study: Study) -> None:
    from trendcli.ensemble.vote import TIE_BREAKS

    min_opset, max_opset = 13, 20  # trendcli.deploy.export.MIN_OPSET / MAX_OPSET (checked by a test)
    for i, raw in enumerate(as_list(doc.get("exports", []))):
        ex = Table(text, "exports", raw, i, allowed={"name", "ensemble", "tie_break", "opset", "infer_limit"})
        study.exports.append(ExportEntry(
            name=ex.name_value("name"),
            ensemble=ex.names_in("ensemble", [e.name for e in study.ensembles], "ensemble")[0],
            tie_break=ex.string("tie_break", "first", choices=TIE_BREAKS),
            opset=ex.integer("opset", None, minimum=min_opset, maximum=max_opset),
            infer_limit=ex.integer("infer_limit", None, minimum=1),
        ))


def _check_unique(text: StudyText, study: Study) -> None:
    for table, entries in (("attacks", study.attacks), ("matrices", study.matrices), ("audits", study.audits),
                           ("ensembles", study.ensembles),
                           ("evaluations", study.evaluations), ("exports", study.exports)):
        names = [e.name for e in entries]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise text.fail(table, "name", f"name {dup!r} is used twice", names.index(dup))


def load_study(path: Path | str, run_dir: Path | str | None = None) -> Study:
    """Read and validate a whole study file; nothing runs before every table has passed.

    Relative ``run_dir``, ``store`` and ``data_dir`` resolve against the study file's directory;
    an explicit ``run_dir`` argument (the CLI's ``--run-dir``) against the working directory.
    """
    path = Path(path)
    raw, doc = _read(path)
    text = StudyText(path, raw)
    study = _parse_study_table(text, doc, path, run_dir)
    _parse_models(text, doc, study)
    _parse_attacks(text, doc, study)
    _parse_matrices(text, doc, study)
    _parse_audits(text, doc, study)
    _parse_ensembles(text, doc, study)
    _parse_evaluations(text, doc, study)
    _parse_exports(text, doc, study)
    _check_unique(text, study)
    return study
