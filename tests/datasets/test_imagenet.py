"""ImageNet from a tiny ImageFolder tree: labels, resize + center crop, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trendcli.datasets import imagenet
from trendcli.datasets.imagenet import ImageFolderData, ImageNet
from trendcli.errors import DataNotFoundError, UsageError

CLASSES = ("n01440764", "n01443537")


def thirds(width: int = 60, height: int = 20) -> Image.Image:
    """Red | green | blue vertical thirds."""
    a = np.zeros((height, width, 3), dtype=np.uint8)
    a[:, : width // 3, 0] = 255
    a[:, width // 3 : 2 * width // 3, 1] = 255
    a[:, 2 * width // 3 :, 2] = 255
    return Image.fromarray(a)


def write_tree(root: Path, splits=("train", "val"), classes=CLASSES) -> Path:
    for split in splits:
        for c, wnid in enumerate(classes):
            (root / split / wnid).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (12, 10), (40 * c, 10 * i, 0)).save(root / split / wnid / f"{i}.png")
    return root


@pytest.fixture(autouse=True)
def nowhere_else(tmp_path, monkeypatch):
    monkeypatch.setattr(imagenet, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_labels_are_folder_indices(tmp_path):
    write_tree(tmp_path / "d")
    data = ImageNet().load("train", tmp_path / "d")
    assert len(data) == 6
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.classes == list(CLASSES)


def test_batch_is_resized_and_cropped_to_224(tmp_path):
    write_tree(tmp_path / "d")
    x, y = ImageNet().load("test", tmp_path / "d").batch(torch.tensor([4, 0]))
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    assert y.tolist() == [1, 0]
    # image 4 is class 1, i = 1: a flat (40, 10, 0) colour survives resizing
    assert x[0, :, 100, 100].tolist() == pytest.approx([40 / 255, 10 / 255, 0.0], abs=1e-6)


def test_shorter_side_256_then_center_crop(tmp_path):
    # 60x20 -> 768x256; the central 224 columns (272..495) lie in the green third (256..511):
    # a crop keeps only green, squashing the image to 224x224 would keep red and blue too.
    folder = tmp_path / "val" / "n0"
    folder.mkdir(parents=True)
    thirds().save(folder / "a.png")
    x, _ = ImageFolderData(tmp_path / "val").batch(torch.tensor([0]))
    assert x.shape == (1, 3, 224, 224)
    assert x[0, 1].min().item() > 0.99 and x[0, 0].max().item() < 0.01 and x[0, 2].max().item() < 0.01


def test_test_split_reads_val(tmp_path):
    write_tree(tmp_path / "d", splits=("val",))
    assert len(ImageNet().load("test", tmp_path / "d")) == 6
    with pytest.raises(DataNotFoundError, match="no train/ folder"):
        ImageNet().load("train", tmp_path / "d")


def test_different_class_folders_are_refused(tmp_path):
    write_tree(tmp_path / "d", splits=("train",))
    write_tree(tmp_path / "d", splits=("val",), classes=CLASSES[:1])
    with pytest.raises(DataNotFoundError, match="different class folders"):
        ImageNet().load("train", tmp_path / "d")


def test_class_folder_without_images(tmp_path):
    write_tree(tmp_path / "d")
    (tmp_path / "d" / "val" / "n09999999").mkdir()
    (tmp_path / "d" / "train" / "n09999999").mkdir()
    with pytest.raises(DataNotFoundError, match="class folders of images"):
        ImageNet().load("test", tmp_path / "d")


def test_undecodable_image_names_the_file(tmp_path):
    write_tree(tmp_path / "d")
    bad = tmp_path / "d" / "val" / CLASSES[0] / "0.png"
    bad.write_bytes(b"not a png")
    data = ImageNet().load("test", tmp_path / "d")
    with pytest.raises(DataNotFoundError) as err:
        data.batch(torch.tensor([0]))
    assert str(bad) in str(err.value)


def test_missing_lists_places(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        ImageNet().load("train", tmp_path / "d")
    message = str(err.value)
    for place in (tmp_path / "d", tmp_path / "d" / "imagenet", tmp_path / "system" / "imagenet"):
        assert str(place) in message
    assert "train/<wnid>" in message


def test_official_splits_only(tmp_path):
    write_tree(tmp_path / "d")
    with pytest.raises(UsageError):
        ImageNet().load("val", tmp_path / "d")


def test_info():
    info = ImageNet().info
    assert (info.channels, info.image_size, info.num_classes, len(info.class_names)) == (3, 224, 1000, 1000)
    assert info.class_names[0] == "tench"  # n01440764, the first wnid in sorted order
    assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)
