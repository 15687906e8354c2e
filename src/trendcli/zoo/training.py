"""Train one zoo member (paper section III; docs/method.md "Training")."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from trendcli.data import get_dataset, load_split
from trendcli.errors import ModelFileError, UsageError
from trendcli.fsio import check_output, writable_dir, write_json_atomic
from trendcli.zoo.model import TrendModel
from trendcli.zoo.predict import accuracy
from trendcli.progress import NullProgress, Progress
from trendcli.registry import canonical
from trendcli.zoo.spec import FULL_PRECISION, ModelSpec, model_id
from trendcli.versions import library_versions
from trendcli.zoo.files import CARD, WEIGHTS, build_model, read_card, resolve_device, save_model, state_tensors

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainConfig:
    """Everything `trend train` takes. ``lr``/``weight_decay`` None -> the authors' defaults."""

    arch: str = "smallcnn"
    dataset: str = "fashion_mnist"
    width: float = 1.0
    input_quant: str = "fp"
    per_image: bool = False
    weight_bits: int = FULL_PRECISION
    act_bits: int = FULL_PRECISION
    quantize_first: bool = True
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    split_seed: int = 0
    limit_train: int | None = None
    augment: bool = False
    pretrained: bool = False
    device: str = "auto"
    data_dir: str | None = None

    def resolved(self) -> "TrainConfig":
        """Fill the authors' defaults (SGD lr 0.01, wd 5e-4; Adam lr 1e-3, wd 0) and validate."""
        opt = self.optimizer.lower()
        if opt not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.limit_train is not None and self.limit_train < 1:
            raise UsageError(f"limit_train must be at least 1, got {self.limit_train}")
        lr = self.lr if self.lr is not None else (0.01 if opt == "sgd" else 1e-3)
        wd = self.weight_decay if self.weight_decay is not None else (5e-4 if opt == "sgd" else 0.0)
        if not (lr > 0 and math.isfinite(lr)):
            raise UsageError(f"lr must be a positive number, got {lr}")
        if wd < 0:
            raise UsageError(f"weight_decay must be >= 0, got {wd}")
        return replace(self, optimizer=opt, lr=lr, weight_decay=wd)

    def fingerprint(self) -> dict[str, Any]:
        """What determines the trained weights (device and data location excluded)."""
        d = asdict(self)
        d.pop("device")
        d.pop("data_dir")
        return d


def model_spec_for(config: TrainConfig) -> ModelSpec:
    info = get_dataset(config.dataset).info
    return ModelSpec(
        arch=canonical(config.arch),
        dataset=info.name,
        in_channels=info.channels,
        image_size=info.image_size,
        num_classes=info.num_classes,
        mean=info.mean,
        std=info.std,
        width=config.width,
        input_quant=canonical(config.input_quant),
        per_image=config.per_image,
        weight_bits=config.weight_bits,
        act_bits=config.act_bits,
        quantize_first=config.quantize_first,
        pretrained=config.pretrained,
    )


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int, flip: bool = True) -> torch.Tensor:
    """Per-image random crop after zero padding by ``pad``, and a random horizontal flip."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]  # [n, h, 1]
    cols = (ox[:, None] + torch.arange(w))[:, None, :]  # [n, 1, w]
    out = xp[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)  # [n, c, h, w]
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out.contiguous()


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """lr x0.1 at 60% and 80% of the epochs (authors' MultiStepLR; epoch counts from 0)."""
    drops = sum(epoch >= m for m in (round(0.6 * cfg.epochs), round(0.8 * cfg.epochs)) if m > 0)
    return cfg.lr * (0.1**drops)


# -- resumable state: <out>.resume/ holds the last finished epoch ---------------------------------
def _resume_dir(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.resume")


def _save_resume(rdir: Path, model, best_state, opt, state: dict) -> None:
    tensors = {f"model/{k}": v for k, v in state_tensors(model).items()}
    tensors.update({f"best/{k}": v for k, v in best_state.items()})
    opt_sd = opt.state_dict()
    scalars: dict[str, Any] = {}
    for idx, pstate in opt_sd["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"opt/{idx}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}/{name}"] = value
    rdir.mkdir(parents=True, exist_ok=True)
    tmp = rdir / "checkpoint.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(rdir / "checkpoint.safetensors")
    write_json_atomic(rdir / "state.json", {**state, "opt_scalars": scalars, "opt_groups": opt_sd["param_groups"]})


def _load_resume(rdir: Path, fingerprint: dict, model, opt) -> tuple[dict, dict] | None:
    try:
        state = json.loads((rdir / "state.json").read_text())
        tensors = load_file(str(rdir / "checkpoint.safetensors"))
    except (OSError, ValueError):
        return None
    if state.get("fingerprint") != fingerprint:
        return None
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best/")}
    opt_state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt/"):
            _, idx, name = k.split("/", 2)
            opt_state.setdefault(int(idx), {})[name] = v
    for k, v in state["opt_scalars"].items():
        idx, name = k.split("/", 1)
        opt_state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": opt_state, "param_groups": state["opt_groups"]})
    return state, best


#: The files a trained model directory holds; replacing it (force) replaces only these.
MODEL_FILES = (CARD, WEIGHTS, "train_log.jsonl")


def _is_model(path: Path) -> bool:
    try:
        read_card(path)
    except ModelFileError:
        return False
    return True


def check_model_out(out_dir: Path, force: bool = False) -> None:
    """Refuse ``out_dir`` before any work unless it is absent, or a finished trendcli model and
    ``force`` (a user's directory, a regular file, or a model without ``force``: OutputExistsError)."""
    check_output(out_dir, "model", _is_model, force=force, directory=True, own_files=MODEL_FILES)
    writable_dir(out_dir.parent, "model")


@dataclass
class _Data:
    """The training run's splits: the train loader and its (possibly limited) indices, val and test."""

    train: Any
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test: Any
    test_idx: torch.Tensor


def _load_data(cfg: TrainConfig) -> _Data:
    data_dir = Path(cfg.data_dir) if cfg.data_dir else None
    train_data, train_idx = load_split(cfg.dataset, "train", data_dir, cfg.split_seed)
    _, val_idx = load_split(cfg.dataset, "val", data_dir, cfg.split_seed)
    test_data, test_idx = load_split(cfg.dataset, "test", data_dir, cfg.split_seed)
    if cfg.limit_train is not None:
        g = torch.Generator().manual_seed(cfg.seed)
        train_idx = train_idx[torch.randperm(len(train_idx), generator=g)[: cfg.limit_train]].sort().values
    return _Data(train_data, train_idx, val_idx, test_data, test_idx)


@dataclass
class _State:
    """What an epoch checkpoint holds: the log, the best validation accuracy and weights, the next epoch."""

    log: list[dict]
    best_val: float
    best_state: dict
    start_epoch: int


def _restore(cfg: TrainConfig, out_dir: Path, model: TrendModel, opt: torch.optim.Optimizer, resume: bool,
             progress: Progress) -> _State:
    """The state after the last finished epoch of an interrupted run, else a fresh start."""
    rdir = _resume_dir(out_dir)
    restored = _load_resume(rdir, cfg.fingerprint(), model, opt) if resume else None
    if restored:
        state, best_state = restored
        progress.log(f"resuming {out_dir} after epoch {state['epoch'] + 1} of {cfg.epochs}")
        return _State(state["log"], state["best_val"], best_state, state["epoch"] + 1)
    if rdir.exists():
        shutil.rmtree(rdir)
    return _State([], -1.0, state_tensors(model, copy=True), 0)


def _train_epoch(cfg: TrainConfig, model: TrendModel, opt: torch.optim.Optimizer, data: _Data, epoch: int,
                 device: torch.device, progress: Progress, bar: Any) -> dict[str, Any]:
    """One pass over the shuffled training images; the epoch's log record (val accuracy included)."""
    for group in opt.param_groups:
        group["lr"] = lr_at(cfg, epoch)
    g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    torch.manual_seed(cfg.seed * 100_003 + epoch)
    order = data.train_idx[torch.randperm(len(data.train_idx), generator=g)]
    pad = 4 if model.spec.image_size >= 32 else 2
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    t0 = time.perf_counter()
    for i in range(0, len(order), cfg.batch_size):
        x, y = data.train.batch(order[i : i + cfg.batch_size])
        if cfg.augment:
            x = random_crop_flip(x, g, pad)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        progress.advance(bar)
    seconds = time.perf_counter() - t0
    return {
        "epoch": epoch + 1,
        "lr": lr_at(cfg, epoch),
        "train_loss": float(loss_sum) / len(order),
        "train_acc": float(correct) / len(order),
        "val_acc": accuracy(model, data.train, data.val_idx),
        "seconds": round(seconds, 3),
        "images_per_s": round(len(order) / seconds, 1),
    }


def _write_model(cfg: TrainConfig, model: TrendModel, data: _Data, st: _State, out_dir: Path, device: torch.device,
                 seconds: float) -> TrendModel:
    """Test the best weights and save the model directory with its card and training log."""
    spec = model.spec
    model.load_state_dict(st.best_state)
    model.eval()
    test_acc = accuracy(model, data.test, data.test_idx)
    sizes = {"train_size": len(data.train_idx), "val_size": len(data.val_idx)}
    card = {
        "id": model_id(spec, cfg.optimizer, cfg.seed),
        "train": {**cfg.fingerprint(), "device": str(device), **sizes},
        "split": {"seed": cfg.split_seed, "val_fraction": 0.1, **sizes},
        "accuracy": {"val": st.best_val, "test": test_acc},
        "seconds": round(seconds, 2),
        "versions": library_versions(),
    }
    log_text = "".join(json.dumps(r) + "\n" for r in st.log)
    save_model(model, out_dir, card, extra_files={"train_log.jsonl": log_text})
    shutil.rmtree(_resume_dir(out_dir), ignore_errors=True)
    model.meta = {**read_card(out_dir), "path": str(out_dir)}
    return model


def train(
    config: TrainConfig, out_dir: Path | str, progress: Progress | None = None, resume: bool = True,
    force: bool = False,
) -> TrendModel:
    """Train, keep the best-validation weights, test them, and write ``out_dir`` atomically.

    After each epoch the state is checkpointed beside ``out_dir`` (a hidden ``.NAME.resume/``)
    so an interrupted run resumes from its last finished epoch; ``out_dir`` itself appears only
    when complete. An existing ``out_dir`` is refused before any work unless it is a finished
    trendcli model and ``force`` is set (:func:`check_model_out`).
    """
    cfg = config.resolved()
    progress = progress or NullProgress()
    out_dir = Path(out_dir)
    check_model_out(out_dir, force)
    device = resolve_device(cfg.device)
    spec = model_spec_for(cfg)

    torch.manual_seed(cfg.seed)
    model = build_model(spec).to(device)  # validates every name before any data is read
    data = _load_data(cfg)
    opt = make_optimizer(model, cfg)
    st = _restore(cfg, out_dir, model, opt, resume, progress)

    steps = math.ceil(len(data.train_idx) / cfg.batch_size)
    bar = progress.task(f"train {model_id(spec, cfg.optimizer, cfg.seed)}", total=steps * cfg.epochs)
    progress.advance(bar, steps * st.start_epoch)
    t_start = time.perf_counter()
    for epoch in range(st.start_epoch, cfg.epochs):
        record = _train_epoch(cfg, model, opt, data, epoch, device, progress, bar)
        st.log.append(record)
        if record["val_acc"] > st.best_val:
            st.best_val, st.best_state = record["val_acc"], state_tensors(model, copy=True)
        progress.log(
            f"epoch {epoch + 1}/{cfg.epochs}: loss {record['train_loss']:.4f} "
            f"train {record['train_acc']:.4f} val {record['val_acc']:.4f} ({record['images_per_s']:.0f} img/s)"
        )
        _save_resume(_resume_dir(out_dir), model, st.best_state, opt,
                     {"fingerprint": cfg.fingerprint(), "epoch": epoch, "best_val": st.best_val, "log": st.log})
    progress.done(bar)
    return _write_model(cfg, model, data, st, out_dir, device, time.perf_counter() - t_start)
