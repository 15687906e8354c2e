"""Generate (or fetch from the store) one adversarial set: a model or an ensemble, one attack.

The set is keyed by content (weights, attack and every parameter, dataset, split, indices,
attack-code version), so the same request is a cache hit that does no attack work. Writing
goes chunk by chunk into a partial file that a rerun resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from trendcli.attacks.base import MEMORY_FORMATS, model_memory_format, resolve_layout
from trendcli.attacks.ensemble import EnsemblePGD
from trendcli.data import load_split
from trendcli.errors import UsageError
from trendcli.zoo.model import TrendModel
from trendcli.progress import NullProgress, Progress
from trendcli.registry import canonical, get_registry
from trendcli.adversarial.store import DEFAULT_ROOT, AdvSet, AdvStore, content_key, make_spec
from trendcli.ensemble.vote import predict as vote_predict
from trendcli.zoo.files import check_compatible, load_models, resolve_device

#: Chunk size when a member normalizes per minibatch: the authors attacked in batches of 128
#: for transfer and 256 for ensembles (docs/method.md "Input quantization").
MINIBATCH_CHUNK = {False: 128, True: 256}
DEFAULT_CHUNK = 128


@dataclass
class AttackResult:
    """An adversarial set and how it was obtained."""

    advset: AdvSet
    cached: bool
    key: str
    clean_accuracy: float
    success_rate: float
    seconds: float
    images_per_s: float

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: accuracy, success, norms, timing, and where the set lives."""
        s = self.advset
        linf, l2, success = s.linf, s.l2, s.success
        fooled = success.astype(bool)
        return {
            "key": self.key,
            "path": str(s.path),
            "cached": self.cached,
            "attack": s.spec["attack"],
            "params": s.spec["params"],
            "n": s.n,
            "clean_accuracy": self.clean_accuracy,
            "success_rate": self.success_rate,
            "mean_linf": float(linf[fooled].mean()) if fooled.any() else 0.0,
            "max_linf": float(linf.max()) if len(linf) else 0.0,
            "mean_l2": float(l2[fooled].mean()) if fooled.any() else 0.0,
            "max_l2": float(l2.max()) if len(l2) else 0.0,
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
        }


def build_attack(method: str, params: dict[str, Any] | None, n_models: int) -> Any:
    """A single-model attack from the registry; for several models an EnsemblePGD with a direction
    rule, or the ensemble form of an adaptive attack (apgd, apgd_t, square, mifgsm)."""
    from trendcli.attacks.ensemble_adaptive import ENSEMBLE_VARIANTS

    reg = get_registry()
    name = canonical(method)
    params = dict(params or {})
    is_rule = name in reg.names("direction rule")
    is_attack = name in reg.names("attack")
    if n_models > 1:
        if name in ENSEMBLE_VARIANTS:
            return ENSEMBLE_VARIANTS[name](**params)  # unknown params raise UsageError naming the allowed ones
        if not is_rule:
            raise UsageError(
                f"{n_models} models need an ensemble direction rule or an adaptive attack, not {method!r}; known: "
                f"{', '.join(reg.names('direction rule'))}, {', '.join(ENSEMBLE_VARIANTS)}"
            )
        try:
            return EnsemblePGD(rule=name, **params)
        except TypeError as exc:
            raise UsageError(f"bad parameter for ensemble attack {name!r}: {exc}") from None
    if is_attack:
        try:
            return reg.factory("attack", name)(**params)
        except TypeError as exc:
            raise UsageError(f"bad parameter for attack {name!r}: {exc}") from None
    if is_rule:
        raise UsageError(f"direction rule {name!r} attacks an ensemble: pass two or more --model")
    raise UsageError(
        f"unknown attack {method!r}; known: {', '.join(reg.names('attack'))} (one model), "
        f"{', '.join(reg.names('direction rule'))} (ensembles)"
    )


def per_minibatch(model: TrendModel) -> bool:
    """Does the model's output for an image depend on its batch-mates (per-minibatch Qb)?"""
    quant = model.input_quant
    return getattr(quant, "bits", None) is not None and not getattr(quant, "per_image", True) and quant.name.startswith("q")


def _predict(models: Sequence[nn.Module], x: torch.Tensor, tie_break: str) -> torch.Tensor:
    with torch.inference_mode():
        if len(models) == 1:
            return models[0](x).argmax(1)
        return vote_predict([m(x) for m in models], tie_break=tie_break)


def attack(
    models: Any,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    split: str = "test",
    limit: int | None = None,
    indices: torch.Tensor | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    store: str | Path = DEFAULT_ROOT,
    force: bool = False,
    data_dir: Path | None = None,
    tie_break: str = "first",
    layout: str | None = "auto",
    progress: Progress | None = None,
) -> AttackResult:
    """Attack one model (or an ensemble with a direction rule) and keep the set in the store.

    ``batch_size`` None: 128 per chunk, or the authors' batch when a member quantizes per
    minibatch (then the chunk is part of the set's key, since it changes the model's output).
    ``layout``: the memory layout every model is attacked in, "contiguous", "channels_last",
    or "auto" (None: the same), the fixed rule of ``trendcli.attacks.base.auto_layout``. The
    layout changes float rounding, so the one used is part of the set's spec and key.
    """
    progress = progress or NullProgress()
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, got {limit}")
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    dev = resolve_device(device)
    members = load_models(list(models) if isinstance(models, (list, tuple)) else [models], dev)
    check_compatible(members)
    from trendcli.zoo.blackbox import check_attackable

    check_attackable(method, [(m, m.name) for m in members])
    layout_used = resolve_layout(layout or "auto", members)
    params = dict(params or {})
    if len(members) > 1:
        params.setdefault("tie_break", tie_break)  # EMPIR's fixed label uses the same vote
    atk = build_attack(method, params, len(members))
    ensemble = len(members) > 1
    spec0 = members[0].spec
    split_seed = int(members[0].meta.get("split", {}).get("seed", 0))
    data, idx = load_split(spec0.dataset, split, data_dir, split_seed)
    idx = _select(idx, len(data), indices, limit, split)
    per_batch = any(per_minibatch(m) for m in members)
    chunk = batch_size or (MINIBATCH_CHUNK[ensemble] if per_batch else DEFAULT_CHUNK)
    extra: dict[str, Any] = {"members": [m.spec.to_dict() for m in members]}
    if ensemble:
        extra["tie_break"] = tie_break
    if per_batch:
        extra["batch_size"] = chunk
    spec = make_spec(
        weights_sha256=[m.meta["weights_sha256"] for m in members], attack=canonical(method), params=atk.params,
        dataset=spec0.dataset, split=split, indices=idx, layout=layout_used, extra=extra,
    )
    key = content_key(spec)
    st = AdvStore(store)
    if force:
        st.remove(key)

    def waiting(lock: Path) -> None:
        progress.log(f"waiting for another process writing {key[:12]} (lock {lock})")

    t0 = time.perf_counter()
    with st.writer(key, spec, n=len(idx), image_shape=spec0.input_shape, chunk_size=chunk, on_wait=waiting) as writer:
        cached = writer.already_complete
        pending = writer.pending_chunks()
        if not cached:
            if writer.resumed:
                progress.log(f"resuming {key[:12]}: {len(pending)} of {-(-len(idx) // chunk)} chunks left")
            _set_layouts(members, layout_used)
            bar = progress.task(f"{canonical(method)} on {'+'.join(m.name for m in members)}", total=sum(c.size for c in pending))
            for c in pending:
                sel = idx[c.start : c.stop]
                x, y = data.batch(sel)
                x, y = x.to(dev), y.to(dev)
                adv = atk(members, x, y) if ensemble else atk(members[0], x, y)
                writer.write_chunk(
                    c, indices=sel, labels=y.cpu(), adv=adv.cpu(), clean=x.cpu(),
                    clean_pred=_predict(members, x, tie_break).cpu(), adv_pred=_predict(members, adv, tie_break).cpu(),
                    loss_curve=getattr(atk, "last_loss_curve", None),  # APGD's, kept with the set (masking check)
                )
                progress.advance(bar, c.size)
            progress.done(bar)
        seconds = time.perf_counter() - t0
        advset = writer.finish(timing=None if cached else {"seconds": round(seconds, 3), "images_per_s": round(len(idx) / max(seconds, 1e-9), 1)})
    labels = advset.labels
    clean_acc = float((advset.clean_pred == labels).mean())
    timing = advset.timing or {}
    return AttackResult(
        advset=advset, cached=cached, key=key, clean_accuracy=clean_acc, success_rate=advset.success_rate,
        seconds=0.0 if cached else float(timing.get("seconds", seconds)),
        images_per_s=0.0 if cached else float(timing.get("images_per_s", 0.0)),
    )


def _select(idx: torch.Tensor, size: int, indices: Any, limit: int | None, split: str) -> torch.Tensor:
    """The images to attack: ``indices`` when given (checked against the data's size), else the split's first ``limit``."""
    if indices is not None:
        sel = torch.as_tensor(indices, dtype=torch.int64)
        if len(sel) == 0 or int(sel.min()) < 0 or int(sel.max()) >= size:
            raise UsageError(f"indices must lie in [0, {size}) for the {split} split")
        return sel
    return idx if limit is None else idx[:limit]


def _set_layouts(members: Sequence[TrendModel], layout: str) -> None:
    """Put every member in the memory format ``layout`` names."""
    fmt = MEMORY_FORMATS[layout]
    for m in members:
        if model_memory_format(m) != fmt:
            m.to(memory_format=fmt)
