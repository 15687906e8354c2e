"""Export an ensemble to one ONNX graph: every member's normalization, input quantizer and
network, then the majority vote (docs/method.md, "A model", "Input quantization", "Halftoning",
"Weight and activation quantization", "Ensemble prediction and TREND design").

The deployed form of Qb is the *per-image* one (min/max per image): a deployed prediction must
not depend on which other images share the batch. Members are therefore always exported with
per-image input quantization, whatever form they were trained with; evaluate with the same
form (``trendcli.zoo.files.load_model(dir, per_image=True)``) to measure what is deployed.

Inside the graph: weight quantization is folded into the stored weights (the quantized values,
trendcli.quantizers.fold_weight_quantization); activation quantization stays as ops; ht_fs runs
in its export form (trendcli.deploy.onnx_ops), bit-for-bit the library's result.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from trendcli.errors import FileAccessError, OnnxExportError, UsageError
from trendcli.fsio import check_output, writable_dir
from trendcli.progress import Progress
from trendcli.zoo.model import TrendModel
from trendcli.zoo.blackbox import PLACEHOLDER_DOMAIN
from trendcli.zoo.files import check_compatible

FORMAT = "trendcli-onnx-ensemble/1"
METADATA_KEY = "trendcli"
EXPORT_TIE_BREAKS = ("first", "confidence")
DEFAULT_OPSET = 17
MIN_OPSET = 13  # ReduceSum with axes as an input
MAX_OPSET = 20  # the newest opset torch's TorchScript exporter writes (torch 2.14)
INPUT_NAME = "images"
OUTPUT_NAMES = ("label", "votes", "member_labels", "member_logits")
BATCH_AXIS = "batch"
PER_IMAGE_NOTE = (
    "input quantization (Qb) uses per-image min/max, so an image's prediction does not depend "
    "on the rest of its batch; the paper's per-minibatch form is not deployed"
)


def check_export_tie_break(tie_break: str) -> str:
    """``first`` or ``confidence``; ``paper`` is random and cannot live in a fixed graph."""
    if tie_break == "paper":
        raise OnnxExportError(
            "tie-break 'paper' picks a random member on ties and cannot be exported; "
            "use --tie-break first (the export default) or confidence"
        )
    if tie_break not in EXPORT_TIE_BREAKS:
        raise UsageError(f"unknown tie-break {tie_break!r} for export; known: {', '.join(EXPORT_TIE_BREAKS)}")
    return tie_break


def vote_tensors(logits: torch.Tensor, tie_break: str = "first") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(label [N], votes [N, classes], member_labels [N, K]) from stacked logits [N, K, classes].

    votes[n, c] = sum_k 1[argmax f_k(x_n) = c] (docs/method.md, "Ensemble prediction").
    ``first``: among the tied top classes, the one voted by the earliest member: member k is a
    candidate when votes[n, label_k] equals the top count, and the candidate with the highest
    priority K - k wins. ``confidence``: among the tied top classes, the highest mean softmax
    over members (exact ties of that to the lowest class index). Plain tensor ops, so the same
    code runs in torch and traces to ONNX (Equal, ReduceSum, GatherElements, ArgMax).
    """
    _, members, classes = logits.shape
    member_labels = logits.argmax(2)  # [N, K]
    class_ids = torch.arange(classes, device=logits.device)
    votes = (member_labels.unsqueeze(2) == class_ids).to(torch.int64).sum(1)  # [N, classes]
    top = votes.max(1, keepdim=True).values  # [N, 1]
    if tie_break == "first":
        candidate = votes.gather(1, member_labels) == top  # [N, K]
        priority = torch.arange(members, 0, -1, device=logits.device, dtype=logits.dtype)
        chosen = (candidate.to(logits.dtype) * priority).argmax(1, keepdim=True)
        label = member_labels.gather(1, chosen).squeeze(1)
    elif tie_break == "confidence":
        confidence = logits.softmax(2).mean(1)  # [N, classes]
        masked = torch.where(votes == top, confidence, torch.full_like(confidence, float("-inf")))
        label = masked.argmax(1)
    else:
        raise UsageError(f"unknown tie-break {tie_break!r} for export; known: {', '.join(EXPORT_TIE_BREAKS)}")
    return label, votes, member_labels


def deployed_member(model: TrendModel) -> TrendModel:
    """A copy of ``model`` as the export runs it: eval mode, weights folded, input quantizer
    rebuilt per-image (registry factory of ``spec.input_quant``) in its export form."""
    from trendcli.deploy.onnx_ops import export_form
    from trendcli.quantizers.layers import fold_weight_quantization
    from trendcli.registry import get_registry

    if any(parametrize.is_parametrized(m) for m in model.modules()):
        # deepcopy would share the parametrized module classes with the original, and folding
        # the copy would strip the original's weights: rebuild from the spec and copy the state.
        from trendcli.zoo.files import build_model

        member = build_model(model.spec)
        member.load_state_dict(model.state_dict())
        member.meta = dict(model.meta)
    else:
        member = copy.deepcopy(model)
    member = member.to("cpu").eval()
    fold_weight_quantization(member.network)
    quantizer = get_registry().factory("input quantizer", member.spec.input_quant)(per_image=True)
    member.input_quant = export_form(quantizer)
    member.requires_grad_(False)
    return member


class EnsembleGraph(nn.Module):
    """The exported function: images [N, C, H, W] in [0, 1] -> label, votes, member_labels,
    member_logits (one TrendModel per member, per-image input quantization, then the vote)."""

    def __init__(self, models: Sequence[TrendModel], tie_break: str = "first"):
        super().__init__()
        if not models:
            raise UsageError("an ensemble needs at least one member")
        check_compatible(models)
        self.tie_break = check_export_tie_break(tie_break)
        self.members = nn.ModuleList([deployed_member(m) for m in models])
        self.spec = models[0].spec
        self.black_box = _number_black_box(self.members, [m.name for m in models])

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = torch.stack([member(images) for member in self.members], 1)  # [N, K, classes]
        label, votes, member_labels = vote_tensors(logits, self.tie_break)
        return label, votes, member_labels, logits


def _number_black_box(members: Sequence[nn.Module], names: Sequence[str]) -> dict[int, Path]:
    """Give every black-box network of ``members`` its placeholder slot; slot -> its ONNX file
    (trendcli.deploy.splice puts the file's graph where the placeholder is). A file that cannot
    be spliced is a UsageError here, before any tracing."""
    from trendcli.deploy.splice import check_spliceable
    from trendcli.zoo.blackbox import OnnxRuntimeNetwork

    files: dict[int, Path] = {}
    for member, name in zip(members, names):
        for net in member.modules():
            if isinstance(net, OnnxRuntimeNetwork):
                check_spliceable(net.path, name)
                net.export_slot = len(files)
                files[net.export_slot] = net.path
    return files


def _resolve(
    source: Any, tie_break: str | None
) -> tuple[list[TrendModel], list[dict[str, Any]], str]:
    """Members (loaded per-image), their metadata rows and the tie-break policy to export."""
    from trendcli.ensemble.members import Ensemble

    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            source = [path]
        else:
            source = Ensemble.load(path)
    if isinstance(source, Ensemble):
        models = source.models(per_image=True)
        rows = [
            {"id": m.id, "path": str(d), "weights_sha256": m.weights_sha256}
            for m, d in zip(source.members, source.member_dirs())
        ]
        # The paper's tie-break draws a random member and cannot live in a fixed graph: an ensemble
        # designed with it exports with "first" (recorded in the ONNX metadata) unless told otherwise.
        default = "first" if source.tie_break == "paper" else source.tie_break
        return models, rows, tie_break or default
    items = list(source)
    if not items:
        raise UsageError("an ensemble needs at least one member")
    if all(isinstance(i, TrendModel) for i in items):
        from trendcli.ensemble.members import unique_ids

        ids = unique_ids([m.name for m in items])
        rows = [
            {"id": i, "path": m.meta.get("path"), "weights_sha256": m.meta.get("weights_sha256")}
            for i, m in zip(ids, items)
        ]
        return items, rows, tie_break or "first"
    ensemble = Ensemble.from_dirs([Path(i) for i in items])
    return _resolve(ensemble, tie_break)


def _class_names(dataset: str, classes: int) -> list[str]:
    from trendcli.data import get_dataset

    try:
        names = list(get_dataset(dataset).info.class_names)
    except Exception:  # a dataset plugin no longer installed: fall back to indices
        names = []
    return names if len(names) == classes else [str(c) for c in range(classes)]


def export_metadata(models: Sequence[TrendModel], rows: Sequence[dict[str, Any]], tie_break: str, opset: int) -> dict[str, Any]:
    """The JSON stored under metadata_props["trendcli"] of the exported file."""
    from trendcli import __version__

    spec = models[0].spec
    members = []
    for row, model in zip(rows, models):
        s = model.spec
        members.append(
            {
                **row,
                "arch": s.arch,
                "input_quant": s.input_quant,
                "weight_bits": s.weight_bits,
                "act_bits": s.act_bits,
                "trained_per_image": bool(model.meta.get("spec", {}).get("per_image", s.per_image)),
            }
        )
    return {
        "format": FORMAT,
        "trendcli_version": __version__,
        "members": members,
        "dataset": spec.dataset,
        "class_names": _class_names(spec.dataset, spec.num_classes),
        "num_classes": spec.num_classes,
        "input_name": INPUT_NAME,
        "input_shape": [BATCH_AXIS, *spec.input_shape],
        "input_range": [0.0, 1.0],
        "outputs": list(OUTPUT_NAMES),
        "tie_break": tie_break,
        "per_image": True,
        "per_image_note": PER_IMAGE_NOTE,
        "opset": opset,
    }


def export_graph(graph: EnsembleGraph, path: Path, opset: int) -> None:
    """torch.onnx.export of ``graph`` with a dynamic batch axis (TorchScript exporter).

    The TorchScript exporter (dynamo=False) is used on purpose: the graph has no data-dependent
    control flow (ht_fs is unrolled over its fixed wavefronts), its ``dynamic_axes`` is mature,
    and it needs no onnxscript. Its deprecation notices are silenced here.
    """
    c, h, w = graph.spec.input_shape
    example = torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(0))
    axes = {INPUT_NAME: {0: BATCH_AXIS}, **{name: {0: BATCH_AXIS} for name in OUTPUT_NAMES}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=axes,
            do_constant_folding=True,
            custom_opsets={PLACEHOLDER_DOMAIN: 1} if graph.black_box else None,
        )


def export_ensemble(
    ensemble_or_member_dirs: Any,
    out_path: str | Path,
    opset: int = DEFAULT_OPSET,
    tie_break: str | None = None,
) -> Path:
    """Write one ONNX graph for the ensemble and return its path.

    ``ensemble_or_member_dirs``: an Ensemble, an ensemble JSON path, a list of model
    directories, or a list of loaded TrendModels. ``tie_break``: ``first`` or ``confidence``
    (default: the ensemble's own policy; ``first`` for a list). Inputs ``images`` [N, C, H, W]
    float32 in [0, 1]; outputs label int64 [N], votes int64 [N, classes], member_labels int64
    [N, K], member_logits float32 [N, K, classes]. The file passes onnx.checker and is written
    atomically (temp file + rename).
    """
    import onnx

    if not MIN_OPSET <= int(opset) <= MAX_OPSET:
        raise UsageError(f"opset must be {MIN_OPSET}..{MAX_OPSET}, got {opset}")
    out_path = Path(out_path)
    models, rows, policy = _resolve(ensemble_or_member_dirs, tie_break)
    policy = check_export_tie_break(policy)
    graph = EnsembleGraph(models, policy).eval()
    meta = export_metadata(models, rows, policy, int(opset))

    writable_dir(out_path.parent, "ONNX file")
    # A plain create (not mkstemp, which makes the file private): the file keeps the umask's mode.
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        try:
            export_graph(graph, tmp, int(opset))
        except Exception as exc:  # the exporter's own errors, reduced to one line
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxExportError(f"torch.onnx.export failed for opset {opset}: {first_line}") from exc
        proto = onnx.load(str(tmp))
        if graph.black_box:
            from trendcli.deploy.splice import splice_black_box

            proto = splice_black_box(proto, graph.black_box, int(opset))
        proto.producer_name = "trendcli"
        proto.producer_version = meta["trendcli_version"]
        proto.doc_string = (
            f"trendcli ensemble of {len(models)} members ({', '.join(r['id'] for r in rows)}), "
            f"majority vote, tie-break {policy}; {PER_IMAGE_NOTE}"
        )
        del proto.metadata_props[:]
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        try:
            onnx.checker.check_model(proto, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise OnnxExportError(f"the exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from exc
        onnx.save(proto, str(tmp))
        os.replace(tmp, out_path)
    except OSError as exc:
        raise FileAccessError(f"cannot write {out_path}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


# -- the stage -------------------------------------------------------------------------------------


def check_path(onnx_path: str | Path) -> Path:
    """Where an export's dataset check goes: ``E.onnx`` -> ``E.infer.json`` (the report reads it)."""
    return Path(onnx_path).with_suffix(".infer.json")


def _is_export(path: Path) -> bool:
    from trendcli.deploy.runtime import read_metadata

    try:
        read_metadata(path)
    except OnnxExportError:
        return False
    return True


def _is_check(path: Path) -> bool:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "accuracy" in data


def check_export_out(out_path: str | Path, force: bool = False) -> None:
    """Refuse ``out_path`` before any work unless absent, or a trendcli ensemble and ``force``;
    its :func:`check_path` is replaced only when trendcli wrote it. Never a file trendcli did not write."""
    out_path = Path(out_path)
    check_output(out_path, "ONNX ensemble", _is_export, force=force)
    check = check_path(out_path)
    if check != out_path:
        check_output(check, "export check", _is_check, force=True)
    writable_dir(out_path.parent, "ONNX file")


@dataclass
class ExportRun:
    """What the export stage did: the ONNX file, its dataset check (DatasetRun.summary()) and both paths."""

    path: Path
    check: dict[str, Any]
    files: dict[str, Path]


def run_export(
    ensemble_or_member_dirs: Any,
    out_path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    tie_break: str | None = None,
    dataset: str | None = None,
    infer_limit: int | None = None,
    data_dir: str | Path | None = None,
    provider: str = "cpu",
    progress: Progress | None = None,
    force: bool = False,
) -> ExportRun:
    """The export stage: :func:`export_ensemble`, then the file run on onnxruntime over the first
    ``infer_limit`` test images of ``dataset`` (default: the export's own), written beside it as
    :func:`check_path` (accuracy, member agreement, images/s, latency). An existing ``out_path``
    is refused before any work unless it is a trendcli ensemble and ``force`` (:func:`check_export_out`)."""
    from trendcli.deploy.runtime import OnnxEnsemble, run_dataset
    from trendcli.fsio import write_json_atomic

    check_export_out(out_path, force)
    path = export_ensemble(ensemble_or_member_dirs, out_path, opset=opset, tie_break=tie_break)
    run = run_dataset(OnnxEnsemble(path, provider=provider), dataset, limit=infer_limit,
                      data_dir=Path(data_dir) if data_dir else None, progress=progress)
    summary = run.summary()
    write_json_atomic(check_path(path), summary)
    return ExportRun(path, summary, {"onnx": path, "infer": check_path(path)})
