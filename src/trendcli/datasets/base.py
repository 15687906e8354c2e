"""What a dataset plugin provides, and the seeded train/validation split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

VAL_FRACTION = 0.1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset (no file access)."""

    name: str
    channels: int
    image_size: int
    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass
class Location:
    """Where a dataset was found, or every place that was searched."""

    found: Path | None
    searched: list[str] = field(default_factory=list)
    hint: str = ""  # how to get the data when it is missing


@runtime_checkable
class ImageData(Protocol):
    """A split's images. ``labels`` holds every label; ``batch`` returns float images in [0, 1]."""

    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[B, C, H, W]`` float32 in [0, 1] and labels ``[B]`` int64."""
        ...


class TensorImages:
    """An in-memory split: uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("TensorImages needs uint8 images of shape [N, C, H, W]")
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = images
        self.labels = labels.to(torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[indices].float().div_(255.0), self.labels[indices]


class DatasetSource(Protocol):
    """What a ``trend_datasets`` factory returns."""

    info: DatasetInfo

    def locate(self, data_dir: Path | None) -> Location:
        """Find the files (no loading); ``found`` is None when absent."""
        ...

    def load(self, split: str, data_dir: Path | None) -> ImageData:
        """Load the official ``train`` or ``test`` split; raise DataNotFoundError if absent."""
        ...


def split_indices(n: int, seed: int, val_fraction: float = VAL_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded 90/10 train/validation split of the official train set (indices, sorted)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = int(round(n * val_fraction))
    return perm[n_val:].sort().values, perm[:n_val].sort().values
