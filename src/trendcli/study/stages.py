"""The body of each study task: one call into the library's stage function, paths resolved against
the run directory. The same functions back `trend matrix`, `trend design` and `trend export-ensemble`,
so a study and the plain commands write the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from trendcli.progress import Progress


def _data_dir(args: dict[str, Any]) -> Path | None:
    return Path(args["data_dir"]) if args.get("data_dir") else None


def train_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.zoo.training import TrainConfig, train

    cfg = TrainConfig(**{**args["config"], "dataset": args["dataset"], "device": args["device"], "data_dir": args.get("data_dir")})
    # the run directory is the study's own: a task reruns only when its marker is missing or stale
    model = train(cfg, run_dir / args["out"], progress, force=True)
    return {"id": model.meta["id"], "accuracy": model.meta["accuracy"], "weights_sha256": model.meta["weights_sha256"]}


def attack_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.adversarial.generate import attack

    result = attack(
        str(run_dir / args["model"]), args["method"], args["params"], split=args["split"], limit=args["limit"],
        batch_size=args["batch_size"], device=args["device"], store=args["store"], data_dir=_data_dir(args),
        layout=args["layout"], force=bool(args.get("force")), progress=progress,
    )
    return {k: v for k, v in result.summary().items() if k in ("key", "cached", "clean_accuracy", "success_rate", "seconds")}


def matrix_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.transfer.matrix import run_matrix

    run = run_matrix(
        [str(run_dir / m) for m in args["models"]], run_dir / args["out"], args["method"], args["params"],
        split=args["split"], limit=args["limit"], batch_size=args["batch_size"], device=args["device"],
        store=args["store"], data_dir=_data_dir(args), layout=args["layout"], group_by=args.get("group_by") or None,
        force=bool(args.get("force")), reuse=not args.get("force"), progress=progress,
    )
    return {"models": len(run.matrix.names), "cached": run.matrix.cached}


def audit_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.transfer.audit import run_audit

    run = run_audit(
        run_dir / args["target"], [run_dir / s for s in args["surrogates"]], run_dir / args["out"], args["method"],
        args["params"], split=args["split"], limit=args["limit"], batch_size=args["batch_size"], device=args["device"],
        store=args["store"], data_dir=_data_dir(args), layout=args["layout"], progress=progress,
    )
    overall = run.audit.get("overall") or {}
    return {"surrogates": len(run.audit["surrogates"]), "worst_case_tm": (overall.get("worst_case_tm") or {}).get("rate")}


def _matrix_names(matrix_path: Path, run_dir: Path, dirs: list[str]) -> list[str]:
    """The matrix's names of the study's model directories (``models/<name>``)."""
    from trendcli.transfer.matrix import TransferMatrix

    mx = TransferMatrix.load(matrix_path)
    name_of = {Path(d).resolve(): n for n, d in zip(mx.names, mx.model_dirs) if d}
    return [name_of[(run_dir / d).resolve()] for d in dirs]


def design_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.ensemble.selection import run_design

    matrix_path = run_dir / args["matrix"]
    run = run_design(
        matrix_path, args["size"], run_dir / args["out"], _matrix_names(matrix_path, run_dir, args["require"]),
        _matrix_names(matrix_path, run_dir, args["candidates"]) or None, tie_break=args["tie_break"], force=True,
    )
    best = run.result.candidates[0]
    return {"members": list(best.members), "score": best.score}


def _outside_source(args: dict[str, Any], run_dir: Path) -> str | None:
    """The worst case's transfer source when the study names none: the non-member of the design
    matrix with the highest mean TM into the members (trendcli.ensemble.worst_case.strongest_outside_source)."""
    import json

    from trendcli.ensemble.members import Ensemble
    from trendcli.ensemble.worst_case import strongest_outside_source

    data = json.loads((run_dir / args["matrix"]).read_text())
    name_of = {Path(d).resolve(): n for n, d in zip(data["names"], data["model_dirs"]) if d}
    members = [name_of.get(Path(p).resolve()) for p in Ensemble.load(run_dir / args["ensemble"]).member_dirs()]
    best = strongest_outside_source(data, [m for m in members if m])
    return data["model_dirs"][data["names"].index(best)] if best else None


def evaluate_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.ensemble.evaluation import EvalConfig, evaluate
    from trendcli.ensemble.worst_case import WorstCaseConfig

    params = args.get("params", {})
    protocol = args.get("protocol", "standard")
    transfer = str(run_dir / args["transfer_from"]) if args.get("transfer_from") else None
    if protocol == "worst-case" and transfer is None and args.get("matrix"):
        transfer = _outside_source(args, run_dir)
    cfg = EvalConfig(
        attacks=tuple(args["attacks"]), eps=tuple(args["eps"]), limit=args["limit"], transfer_from=transfer,
        per_image=args.get("per_image"), device=args["device"], store=args["store"], data_dir=args.get("data_dir"),
        layout=args.get("layout", "auto"), force=bool(args.get("force")), protocol=protocol, worst_case=WorstCaseConfig(**args.get("worst_case", {})),
        **{k: params[k] for k in ("alpha", "steps", "random_start", "seed") if k in params},
    )
    ev = evaluate(run_dir / args["ensemble"], cfg, out_dir=run_dir / args["out"], progress=progress)
    return {"headline": ev.headline()}


def export_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.deploy.export import run_export

    run = run_export(
        run_dir / args["ensemble"], run_dir / args["out"], tie_break=args["tie_break"], dataset=args["dataset"],
        infer_limit=args.get("infer_limit"), data_dir=_data_dir(args), progress=progress, force=True,
        **({"opset": args["opset"]} if args.get("opset") else {}),
    )
    return {"accuracy": run.check.get("accuracy")}


def report_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.report.html import write_report

    report = write_report(run_dir, run_dir / args["out"])
    return {"report": str(report.index)}


STAGE_FUNCTIONS: dict[str, Callable[[dict[str, Any], Path, Progress], dict[str, Any]]] = {
    "train": train_stage,
    "attack": attack_stage,
    "matrix": matrix_stage,
    "audit": audit_stage,
    "design": design_stage,
    "evaluate": evaluate_stage,
    "export": export_stage,
    "report": report_stage,
}


def run_stage(stage: str, args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    """Run one task's stage function."""
    return STAGE_FUNCTIONS[stage](args, Path(run_dir), progress)
