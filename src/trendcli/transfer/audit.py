"""Transfer-risk audit: do adversarial examples crafted on surrogate models fool a target?

The audit is a rectangular transfer matrix (trendcli.transfer.matrix.compute_matrix with the
surrogates as sources and the one target as the only target): every surrogate is attacked (or
its set read from the store) and the target evaluated on every set, forward passes only, so
the target may be a black-box member (an ONNX file run in onnxruntime). It reports:

- per surrogate s: the transfer risk TM(s -> target) = N_t / N_g (docs/method.md eq. 1),
  N_t of N_g with its Wilson 95 % interval, surrogates ranked by it;
- overall, per image, the worst case over surrogates: among the images where at least one
  surrogate's attack counts for TM (both right on the clean image, the surrogate fooled), the
  share where at least one such surrogate's adversarial image also fools the target,
  ``worst_case_tm = |OR_s T_s| / |OR_s G_s|`` with G_s = C_s & ~adv_ok[s, s] and
  T_s = G_s & ~adv_ok[s, target];
- and the target's accuracy when every surrogate's set is tried on each image (an image
  counts as correct only if the target is right on it clean and on every set):
  ``worst_case_accuracy = |clean_ok[target] & AND_s adv_ok[s, target]| / N``.

:func:`run_audit` is the audit stage: `trend audit` and a study's ``[[audits]]`` both call it.
Its files: OUT.json (format ``trendcli-audit/1``), OUT.html, and the matrix it came from,
OUT.matrix.json (reused by the next run of the same audit).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trendcli.errors import UsageError
from trendcli.fsio import write_json_atomic
from trendcli.progress import Progress
from trendcli.stats import decode_bits, jsonable, rate_record

__all__ = ["FORMAT", "AuditRun", "audit_from_matrix", "audit_paths", "find_members", "run_audit"]

FORMAT = "trendcli-audit/1"


def find_members(paths: Sequence[str | Path]) -> list[Path]:
    """Model directories: each path is one (it holds model.json) or a folder of them (its subfolders that do)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "model.json").is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted(d for d in p.iterdir() if (d / "model.json").is_file())
            if not found:
                raise UsageError(f"{p} holds no model directories (folders with a model.json)")
            out.extend(found)
        else:
            raise UsageError(f"no model directory or folder of them at {p}")
    return out


def audit_paths(out: str | Path) -> dict[str, Path]:
    """The files an audit writes under OUT (a .json/.html suffix is dropped)."""
    out = Path(out)
    prefix = out.with_suffix("") if out.suffix in (".json", ".html") else out
    return {kind: prefix.with_name(prefix.name + ext) for kind, ext in
            (("json", ".json"), ("html", ".html"), ("matrix", ".matrix.json"))}


def _bits(per_image: dict[str, Any], *keys: str) -> np.ndarray | None:
    node: Any = per_image
    for k in keys:
        node = (node or {}).get(k)
    return None if node is None else decode_bits(node)


def _worst_case(mx: Any, target: str, surrogates: Sequence[str]) -> dict[str, Any] | None:
    """The per-image worst case over surrogates (module docstring); None without per-image outcomes."""
    clean_t = _bits(mx.per_image, "clean_ok", target)
    if clean_t is None:
        return None
    generated = np.zeros_like(clean_t, dtype=bool)
    transferred = np.zeros_like(generated)
    survives = clean_t.astype(bool).copy()
    for s in surrogates:
        clean_s, adv_s, adv_t = (_bits(mx.per_image, "clean_ok", s), _bits(mx.per_image, "adv_ok", s, s),
                                 _bits(mx.per_image, "adv_ok", s, target))
        if clean_s is None or adv_s is None or adv_t is None:
            return None
        g = clean_s & clean_t & ~adv_s
        generated |= g
        transferred |= g & ~adv_t
        survives &= adv_t
    return {
        "worst_case_tm": rate_record(int(transferred.sum()), int(generated.sum())),
        "worst_case_accuracy": rate_record(int(survives.sum()), int(survives.size)),
        "clean_accuracy": rate_record(int(clean_t.sum()), int(clean_t.size)),
        "fooled_by": {
            "any_surrogate": int((clean_t & ~survives).sum()),
            "of_clean_correct": int(clean_t.sum()),
        },
    }


def audit_from_matrix(mx: Any, target: str, surrogates: Sequence[str] | None = None) -> dict[str, Any]:
    """The audit record of ``target`` from a matrix whose rows hold the surrogates (column ``target``)."""
    t = mx.index(target)
    names = [n for n in (surrogates if surrogates is not None else mx.names) if n != target]
    if not names:
        raise UsageError("an audit needs at least one surrogate besides the target")
    rows = []
    for s in names:
        i = mx.index(s)
        n_g, n_t = int(mx.n_g[i, t]), int(mx.n_t[i, t])
        rows.append({
            "surrogate": s,
            "risk": rate_record(n_t, n_g),
            "n_c": int(mx.n_c[i, t]),
            "clean_accuracy": _finite(mx.clean_accuracy.get(s)),
            "store_key": next((src.get("store_key") for src in mx.sources if src.get("name") == s), None),
        })
    # highest risk first; undefined (no image to judge) last; then the larger N_t, then the name
    rows.sort(key=lambda r: (r["risk"]["rate"] is None, -(r["risk"]["rate"] or 0.0), -r["risk"]["k"], r["surrogate"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    entry = next((m for m in mx.models if m.get("name") == target), {})
    return jsonable({
        "format": FORMAT,
        "target": {"name": target, "id": entry.get("id"), "path": entry.get("path"),
                   "weights_sha256": entry.get("weights_sha256"), "clean_accuracy": _finite(mx.clean_accuracy.get(target))},
        "attack": mx.attack,
        "risk_definition": "TM(s -> target) = N_t / N_g (docs/method.md eq. 1), Wilson 95 % interval",
        "surrogates": rows,
        "overall": _worst_case(mx, target, names),
    })


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass
class AuditRun:
    """What the audit stage did: the audit record, the matrix behind it and the files written."""

    audit: dict[str, Any]
    matrix: Any
    files: dict[str, Path]


def run_audit(
    target: str | Path,
    surrogates: Sequence[str | Path],
    out: str | Path,
    method: str = "pgd",
    params: dict[str, Any] | None = None,
    *,
    split: str = "test",
    limit: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    store: str | Path = "runs/adv",
    data_dir: Path | None = None,
    layout: str = "auto",
    reuse: bool = True,
    force: bool = False,
    progress: Progress | None = None,
) -> AuditRun:
    """The audit stage: attack every surrogate (or read its set from the store), evaluate ``target``
    on every set, and write OUT.json, OUT.html and OUT.matrix.json.

    ``target``: a model directory (an imported ONNX member runs black-box). ``surrogates``: model
    directories or folders of them (the target, if among them, is left out). An existing
    OUT.matrix.json with the same models and settings is reused unless ``reuse`` is False.
    """
    from trendcli.transfer.audit_html import write_audit_html
    from trendcli.transfer.matrix import compute_matrix
    from trendcli.transfer.reuse import previous_matrix_path

    t0 = time.perf_counter()
    target = Path(target)
    if not (target / "model.json").is_file():
        hint = " (import it first: trend import FILE --dataset NAME --out DIR)" if target.suffix == ".onnx" else ""
        raise UsageError(f"the audit target must be a model directory, got {target}{hint}")
    members = [m for m in find_members(surrogates) if m.resolve() != target.resolve()]
    if not members:
        raise UsageError("no surrogate models found besides the target; pass --surrogates DIR")
    paths = audit_paths(out)
    previous = previous_matrix_path(paths["matrix"].with_suffix("")) if reuse else None
    mx = compute_matrix(members, method, params, targets=[target], split=split, limit=limit, batch_size=batch_size,
                        device=device, store=store, data_dir=data_dir, layout=layout, previous=previous, force=force,
                        progress=progress)
    target_name = mx.target_names[-1] if mx.target_names else mx.names[-1]
    record = audit_from_matrix(mx, target_name, [n for n in (mx.source_names or mx.names) if n != target_name])
    record["seconds"] = round(time.perf_counter() - t0, 3)
    mx.save(paths["matrix"])
    write_json_atomic(paths["json"], record)
    write_audit_html(record, paths["html"])
    return AuditRun(record, mx, paths)
