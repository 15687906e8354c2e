"""Pretrained timm weights from the local caches only: trendcli never downloads.

Looked up, in order: the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``,
else ``~/.cache/huggingface/hub``), where timm keeps the weights it fetches, as
``models--<org>--<name>/snapshots/<revision>/model.safetensors``; then torch hub's
checkpoint folder (``torch.hub.get_dir()/checkpoints``), where older timm versions kept the
file named by the model's URL, read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

# Set before huggingface_hub is first imported (it reads the variable once): nothing below may
# reach the network, and a library trendcli calls should not try either.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from trendcli.errors import ModelFileError  # noqa: E402

WEIGHTS_FILE = "model.safetensors"


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _hub_file(repo_id: str, cache: Path) -> Path | None:
    """``repo_id``'s model.safetensors in ``cache`` at the revision ``refs/main`` names, else any snapshot's."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        candidate = repo_dir / "snapshots" / ref.read_text().strip() / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    found = sorted((repo_dir / "snapshots").glob(f"*/{WEIGHTS_FILE}"))
    return found[0] if found else None


def cached_state_dict(arch: str, timm_name: str) -> dict[str, torch.Tensor]:
    """The published weights of ``timm_name`` from a local cache, else a ModelFileError naming the file and folder."""
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise ModelFileError(f"{arch}: timm lists no pretrained weights for {timm_name}; train it with pretrained=False")
    cache = hub_cache()
    if cfg.hf_hub_id:
        path = _hub_file(cfg.hf_hub_id, cache)
        if path is not None:
            return load_file(str(path))
    if cfg.url:
        legacy = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
        if legacy.is_file():
            state = torch.load(legacy, map_location="cpu", weights_only=True)
            return state.get("state_dict", state) if isinstance(state, dict) else state
    repo = cfg.hf_hub_id or "?"
    raise ModelFileError(
        f"{arch}: pretrained weights not in the local cache and trendcli never downloads: put {repo}'s "
        f"{WEIGHTS_FILE} at {cache}/models--{repo.replace('/', '--')}/snapshots/<revision>/{WEIGHTS_FILE} "
        f"(e.g. `hf download {repo} {WEIGHTS_FILE}` on a machine with network, then copy that folder), "
        "or train with pretrained=False"
    )
