"""The body of each study task: one call into the library, paths resolved against the run dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from trendcli.progress import Progress


def _p(run_dir: Path, rel: str | None) -> Path | None:
    return None if rel is None else (run_dir / rel)


def _data_dir(args: dict[str, Any]) -> Path | None:
    return Path(args["data_dir"]) if args.get("data_dir") else None


def train_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.zoo.training import TrainConfig, train

    cfg = TrainConfig(**{**args["config"], "dataset": args["dataset"], "device": args["device"], "data_dir": args.get("data_dir")})
    model = train(cfg, run_dir / args["out"], progress)
    return {"id": model.meta["id"], "accuracy": model.meta["accuracy"], "weights_sha256": model.meta["weights_sha256"]}


def attack_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.adversarial.generate import attack

    result = attack(
        str(run_dir / args["model"]), args["method"], args["params"], split=args["split"], limit=args["limit"],
        batch_size=args["batch_size"], device=args["device"], store=args["store"], data_dir=_data_dir(args),
        layout=args.get("layout", "auto"), progress=progress,
    )
    return {k: v for k, v in result.summary().items() if k in ("key", "cached", "clean_accuracy", "success_rate", "seconds")}


def matrix_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.transfer.matrix import compute_matrix

    out = run_dir / args["out"]
    json_path = out.with_suffix(".json")
    previous = json_path if json_path.exists() else None
    mx = compute_matrix(
        [str(run_dir / m) for m in args["models"]], args["method"], args["params"], split=args["split"],
        limit=args["limit"], batch_size=args["batch_size"], device=args["device"], store=args["store"],
        data_dir=_data_dir(args), previous=previous, progress=progress,
    )
    mx.save(json_path)
    mx.write_csv(out.with_suffix(".csv"))
    mx.plot(out.with_suffix(".png"))
    if args.get("group_by"):
        from trendcli.fsio import write_json_atomic

        write_json_atomic(out.with_name(out.name + ".groups.json"), mx.groups_dict(args["group_by"]))
    return {"models": len(mx.names), "cached": mx.cached}


def design_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.ensemble.selection import design_from_matrix, ensemble_from_design

    from trendcli.transfer.matrix import TransferMatrix

    matrix_path = run_dir / args["matrix"]
    mx = TransferMatrix.load(matrix_path)
    name_of = {Path(d).resolve(): n for n, d in zip(mx.names, mx.model_dirs)}

    def names(dirs: list[str]) -> list[str]:
        return [name_of[(run_dir / d).resolve()] for d in dirs]

    result = design_from_matrix(matrix_path, args["size"], require=names(args["require"]), candidates=names(args["candidates"]) or None)
    ens = ensemble_from_design(result, tie_break=args["tie_break"])
    ens.save(run_dir / args["out"])
    best = result.candidates[0]
    return {"members": list(best.members), "score": best.score}


def evaluate_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.ensemble.evaluation import EvalConfig, evaluate

    params = args.get("params", {})
    cfg = EvalConfig(
        attacks=tuple(args["attacks"]), eps=tuple(args["eps"]), limit=args["limit"],
        transfer_from=str(run_dir / args["transfer_from"]) if args.get("transfer_from") else None,
        per_image=args.get("per_image"), device=args["device"], store=args["store"], data_dir=args.get("data_dir"),
        **{k: params[k] for k in ("alpha", "steps", "random_start", "seed") if k in params},
    )
    ev = evaluate(run_dir / args["ensemble"], cfg, out_dir=run_dir / args["out"], progress=progress)
    return {"headline": ev.headline()}


def export_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.deploy.export import export_ensemble
    from trendcli.fsio import write_json_atomic
    from trendcli.deploy.runtime import OnnxEnsemble, run_dataset

    out = run_dir / args["out"]
    kwargs = {"opset": args["opset"]} if args.get("opset") else {}
    export_ensemble(run_dir / args["ensemble"], out, tie_break=args["tie_break"], **kwargs)
    onnx_ens = OnnxEnsemble(out, provider="cpu")
    run = run_dataset(onnx_ens, args["dataset"], limit=args.get("infer_limit"), data_dir=_data_dir(args), progress=progress)
    summary = run.summary()
    write_json_atomic(out.with_suffix(".infer.json"), summary)
    return {"accuracy": summary.get("accuracy")}


def report_stage(args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    from trendcli.report.html import write_report

    report = write_report(run_dir, run_dir / args["out"])
    return {"report": str(report.index)}


STAGE_FUNCTIONS: dict[str, Callable[[dict[str, Any], Path, Progress], dict[str, Any]]] = {
    "train": train_stage,
    "attack": attack_stage,
    "matrix": matrix_stage,
    "design": design_stage,
    "evaluate": evaluate_stage,
    "export": export_stage,
    "report": report_stage,
}


def run_stage(stage: str, args: dict[str, Any], run_dir: Path, progress: Progress) -> dict[str, Any]:
    """Run one task's stage function."""
    return STAGE_FUNCTIONS[stage](args, Path(run_dir), progress)
