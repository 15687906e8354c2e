"""Datasets by name: the official splits, the seeded train/validation split, batches, a survey."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import torch

from trendcli.datasets.base import SPLITS, DatasetSource, ImageData, split_indices
from trendcli.errors import UsageError
from trendcli.registry import get_registry


def get_dataset(name: str) -> DatasetSource:
    """The dataset source registered as ``name`` (hyphens accepted: ``fashion-mnist``)."""
    return get_registry().factory("dataset", name)()


def load_split(
    name: str, split: str, data_dir: Path | None = None, split_seed: int = 0
) -> tuple[ImageData, torch.Tensor]:
    """The data holding ``split`` and the indices of its images in it.

    ``train`` / ``val``: the seeded 90/10 split of the official train set (datasets.base.split_indices;
    docs/method.md, "Training"); ``test``: all of the official test set.
    """
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    source = get_dataset(name)
    if split == "test":
        data = source.load("test", data_dir)
        return data, torch.arange(len(data))
    data = source.load("train", data_dir)
    train, val = split_indices(len(data), split_seed)
    return data, train if split == "train" else val


def iterate_batches(data: ImageData, indices: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(images, labels)`` for ``indices`` in order, ``batch_size`` at a time (the last may be smaller)."""
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    for start in range(0, len(indices), batch_size):
        yield data.batch(indices[start : start + batch_size])


def describe_datasets(data_dir: Path | None = None) -> list[dict[str, Any]]:
    """For every registered dataset: name, shape, classes, whether and where it was found, where we looked, the hint."""
    registry = get_registry()
    rows = []
    for name in registry.names("dataset"):
        source = registry.factory("dataset", name)()
        info, loc = source.info, source.locate(data_dir)
        rows.append(
            {
                "name": name,
                "shape": (info.channels, info.image_size, info.image_size),
                "classes": info.num_classes,
                "found": loc.found is not None,
                "location": str(loc.found) if loc.found is not None else None,
                "searched": list(loc.searched),
                "hint": loc.hint,
            }
        )
    return rows
