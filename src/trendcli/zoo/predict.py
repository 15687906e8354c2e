"""Batched forward passes under inference mode."""

from __future__ import annotations

import torch

from trendcli.datasets.base import ImageData


@torch.inference_mode()
def predict_split(
    model: torch.nn.Module, data: ImageData, indices: torch.Tensor, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted labels and true labels for ``data[indices]``."""
    device = next(model.parameters()).device
    preds, labels = [], []
    for i in range(0, len(indices), batch_size):
        x, y = data.batch(indices[i : i + batch_size])
        preds.append(model(x.to(device)).argmax(1).cpu())
        labels.append(y)
    return torch.cat(preds), torch.cat(labels)


def accuracy(model: torch.nn.Module, data: ImageData, indices: torch.Tensor, batch_size: int = 1024) -> float:
    """Share of ``data[indices]`` classified correctly."""
    model.eval()
    pred, y = predict_split(model, data, indices, batch_size)
    return float((pred == y).float().mean()) if len(y) else float("nan")
