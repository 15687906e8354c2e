"""Rewrite the files in data/ from the code and the real Fashion-MNIST files.

    .venv/bin/python data/regenerate.py

- <dataset>.json: each built-in dataset's DatasetInfo (tests/test_data.py checks they match).
- Checks the Fashion-MNIST mean/std in the code against the training set (to 4 decimals).
- samples/: the first Fashion-MNIST test image of each class as a 28x28 grayscale PNG.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from trendcli.data import get_dataset

HERE = Path(__file__).resolve().parent
DATASETS = ("fashion_mnist", "cifar10", "cifar100", "imagenet")


def sample_name(label: int, class_name: str) -> str:
    """``0_tshirt-top.png`` for label 0, "T-shirt/top"."""
    slug = class_name.lower().replace("-", "").replace("/", "-").replace(" ", "-")
    return f"{label}_{slug}.png"


def main() -> int:
    for name in DATASETS:
        info = dataclasses.asdict(get_dataset(name).info)
        (HERE / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")

    source = get_dataset("fashion_mnist")
    train = source.load("train", None)
    pixels = train.images.double().div(255)
    mean, std = pixels.mean().item(), pixels.std(unbiased=False).item()
    print(f"fashion_mnist train: mean {mean:.10f}, std {std:.10f}")
    if (round(mean, 4),) != source.info.mean or (round(std, 4),) != source.info.std:
        print(f"the code says mean {source.info.mean}, std {source.info.std}: update it", file=sys.stderr)
        return 1

    test = source.load("test", None)
    for label, class_name in enumerate(source.info.class_names):
        index = int(np.flatnonzero(test.labels.numpy() == label)[0])
        image = test.images[index, 0].numpy()
        Image.fromarray(image).save(HERE / "samples" / sample_name(label, class_name))
        print(f"samples/{sample_name(label, class_name)}: test image {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
