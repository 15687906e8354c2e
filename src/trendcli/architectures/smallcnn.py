"""SmallCNN: a small fast CNN for quick CPU work (Fashion-MNIST in seconds per epoch)."""

from __future__ import annotations

import torch
from torch import nn

from trendcli.architectures.arguments import check_arguments, scale_channels

#: Spatial size of the feature map handed to the classifier, whatever the image size.
POOLED_SIZE = 7


class SmallCNN(nn.Module):
    """Three 3x3 conv + BN + ReLU stages (16, 32, 32 channels x width), two 2x2 max-pools,
    adaptive average pooling to 7x7 and one linear classifier.

    ``image_size // 4`` is the feature map's side after the two pools: for 28x28 images it is
    already 7 and the pooling is left out (it would cost time for nothing); other sizes are
    averaged (or repeated, below 28) to 7x7, which keeps the classifier the same for any size.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: int = 28, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = (scale_channels(c, width) for c in (16, 32, 32))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False),
            nn.BatchNorm2d(c3),
            nn.ReLU(inplace=True),
        )
        if image_size // 4 != POOLED_SIZE:
            self.features.append(nn.AdaptiveAvgPool2d(POOLED_SIZE))
        self.classifier = nn.Linear(c3 * POOLED_SIZE * POOLED_SIZE, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def smallcnn(
    in_channels: int, num_classes: int, image_size: int, width: float = 1.0, pretrained: bool = False
) -> SmallCNN:
    """Build a SmallCNN (any image size >= 4: two 2x2 max-pools)."""
    check_arguments("smallcnn", in_channels, num_classes, image_size, width, pretrained, min_image_size=4)
    return SmallCNN(in_channels, num_classes, image_size, width)
