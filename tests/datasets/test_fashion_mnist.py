"""Fashion-MNIST: where it is looked for, the layouts accepted, validation, the real files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from trendcli.datasets import fashion_mnist
from trendcli.datasets.base import TensorImages
from trendcli.datasets.fashion_mnist import FILES, FashionMNIST
from trendcli.errors import DataNotFoundError, UsageError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(body) if gz else body)


def write_fashion(folder: Path, n_train: int = 6, n_test: int = 3, gz: bool = True, fill: int = 0) -> None:
    """Four idx files: images whose pixel [0, 0] is the image index + fill, labels i % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = np.arange(n) + fill
        images_name, labels_name = FILES[split]
        write_idx(folder / (images_name + suffix), images, gz)
        write_idx(folder / (labels_name + suffix), np.arange(n) % 10, gz)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No Debian files, an empty cache, and a download that fails as it does without network."""
    calls: list[Path] = []

    def fail(root: Path) -> None:
        calls.append(root)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: Name or service not known")

    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "debian")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fashion_mnist, "download", fail)
    return calls


def test_info():
    info = FashionMNIST().info
    assert (info.name, info.channels, info.image_size, info.num_classes) == ("fashion_mnist", 1, 28, 10)
    assert info.class_names[0] == "T-shirt/top" and info.class_names[9] == "Ankle boot"
    assert len(info.mean) == len(info.std) == 1


@pytest.mark.parametrize(
    "layout, gz",
    [(".", True), (".", False), ("FashionMNIST/raw", True), ("FashionMNIST/raw", False)],
)
def test_layouts_in_data_dir(tmp_path, offline, layout, gz):
    write_fashion(tmp_path / "d" / layout, gz=gz)
    data = FashionMNIST().load("train", tmp_path / "d")
    assert isinstance(data, TensorImages)
    assert data.images.shape == (6, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [0, 1, 2, 3, 4, 5] and data.labels.dtype == torch.int64
    assert data.images[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert len(FashionMNIST().load("test", tmp_path / "d")) == 3
    assert offline == []  # found: nothing downloaded


def test_data_dir_comes_before_system_dir(tmp_path, offline):
    write_fashion(fashion_mnist.SYSTEM_DIR, n_train=4)
    write_fashion(tmp_path / "d", n_train=5)
    assert len(FashionMNIST().load("train", tmp_path / "d")) == 5
    loc = FashionMNIST().locate(tmp_path / "d")
    assert loc.found == tmp_path / "d"


def test_falls_back_to_system_dir(tmp_path, offline):
    write_fashion(fashion_mnist.SYSTEM_DIR, n_train=4)
    (tmp_path / "empty").mkdir()
    loc = FashionMNIST().locate(tmp_path / "empty")
    assert loc.found == fashion_mnist.SYSTEM_DIR
    assert loc.searched == [str(tmp_path / "empty"), str(tmp_path / "empty" / "FashionMNIST" / "raw"), str(fashion_mnist.SYSTEM_DIR)]
    assert len(FashionMNIST().load("train", tmp_path / "empty")) == 4


def test_incomplete_folder_is_not_found(tmp_path, offline):
    write_fashion(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert FashionMNIST().locate(tmp_path / "d").found is None


def test_missing_lists_every_place_and_the_hint(tmp_path, offline):
    data_dir = tmp_path / "d"
    with pytest.raises(DataNotFoundError) as err:
        FashionMNIST().load("train", data_dir)
    message = str(err.value)
    for place in (data_dir, data_dir / "FashionMNIST" / "raw", fashion_mnist.SYSTEM_DIR):
        assert str(place) in message
    assert "Name or service not known" in message  # why the download failed
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir DIR" in message
    assert offline == [data_dir]  # the download was tried into --data-dir


def test_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch, offline):
    def half(root: Path) -> None:  # torchvision creates FashionMNIST/raw before it fails
        (root / "FashionMNIST" / "raw").mkdir(parents=True)
        raise OSError("disk full")

    monkeypatch.setattr(fashion_mnist, "download", half)
    with pytest.raises(DataNotFoundError, match="disk full"):
        FashionMNIST().load("train", tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_missing_without_data_dir_downloads_into_cache(tmp_path, offline):
    with pytest.raises(DataNotFoundError) as err:
        FashionMNIST().load("test", None)
    cache = tmp_path / "cache" / "trendcli"
    assert str(cache / "FashionMNIST" / "raw") in str(err.value)
    assert offline == [cache]


def test_successful_download_is_used(tmp_path, monkeypatch, offline):
    def fetch(root: Path) -> None:  # what torchvision leaves behind: .gz and extracted files
        write_fashion(root / "FashionMNIST" / "raw", n_train=7, gz=True)
        write_fashion(root / "FashionMNIST" / "raw", n_train=7, gz=False)

    monkeypatch.setattr(fashion_mnist, "download", fetch)
    assert len(FashionMNIST().load("train", tmp_path / "d")) == 7


def test_official_splits_only(tmp_path, offline):
    write_fashion(tmp_path / "d")
    with pytest.raises(UsageError, match="train and test"):
        FashionMNIST().load("val", tmp_path / "d")


def test_wrong_image_size_names_the_file(tmp_path, offline):
    write_fashion(tmp_path / "d")
    bad = tmp_path / "d" / "train-images-idx3-ubyte.gz"
    write_idx(bad, np.zeros((6, 27, 27), dtype=np.uint8), gz=True)
    with pytest.raises(DataNotFoundError, match="28, 28") as err:
        FashionMNIST().load("train", tmp_path / "d")
    assert str(bad) in str(err.value)


def test_label_out_of_range(tmp_path, offline):
    write_fashion(tmp_path / "d")
    write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", np.array([0, 10, 1]), gz=True)
    with pytest.raises(DataNotFoundError, match="label 10"):
        FashionMNIST().load("test", tmp_path / "d")


def test_label_count_must_match_images(tmp_path, offline):
    write_fashion(tmp_path / "d")
    write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", np.array([0, 1]), gz=True)
    with pytest.raises(DataNotFoundError, match="not 3 uint8 labels"):
        FashionMNIST().load("test", tmp_path / "d")


def test_loaded_arrays_are_cached_until_the_file_changes(tmp_path, offline):
    write_fashion(tmp_path / "d")
    first, second = (FashionMNIST().load("train", tmp_path / "d") for _ in range(2))
    assert first.images is second.images
    write_fashion(tmp_path / "d", n_train=8)  # replaced: other size, so another cache key
    assert len(FashionMNIST().load("train", tmp_path / "d")) == 8


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_debian_files():
    source = FashionMNIST()
    assert source.locate(DEBIAN).found == DEBIAN
    train, test = source.load("train", DEBIAN), source.load("test", DEBIAN)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    # mean and population std of all training pixels / 255, from the histogram of byte values
    hist = torch.bincount(train.images.reshape(-1), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    mean = (hist * values).sum() / hist.sum()
    std = ((hist * (values - mean) ** 2).sum() / hist.sum()).sqrt()
    assert mean.item() == pytest.approx(source.info.mean[0], abs=5e-5)
    assert std.item() == pytest.approx(source.info.std[0], abs=5e-5)
