"""CIFAR-10 / CIFAR-100 from small files in the real pickle-batch format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from trendcli.datasets import cifar
from trendcli.datasets.cifar import CIFAR10_INFO, CIFAR100_INFO, cifar10, cifar100
from trendcli.errors import DataNotFoundError, UsageError

PER_BATCH = 20


def dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def batch(n: int, first: int, num_classes: int, labels_key: bytes) -> dict:
    """Image i has every byte of its red plane = first + i, green = 100, blue = 200."""
    data = np.empty((n, 3072), dtype=np.uint8)
    data[:, :1024] = (first + np.arange(n))[:, None]
    data[:, 1024:2048] = 100
    data[:, 2048:] = 200
    labels = [(first + i) % num_classes for i in range(n)]
    return {b"batch_label": b"testing", b"data": data, labels_key: labels, b"filenames": [b"x.png"] * n}


def write_cifar10(root: Path, names: tuple[str, ...] = CIFAR10_INFO.class_names) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(5):
        dump(folder / f"data_batch_{i + 1}", batch(PER_BATCH, i * PER_BATCH, 10, b"labels"))
    dump(folder / "test_batch", batch(PER_BATCH, 0, 10, b"labels"))
    dump(folder / "batches.meta", {b"label_names": [n.encode() for n in names], b"num_vis": 3072})
    return folder


def write_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", 2 * PER_BATCH), ("test", PER_BATCH)):
        b = batch(n, 0, 100, b"fine_labels")
        b[b"coarse_labels"] = [label // 5 for label in b[b"fine_labels"]]
        dump(folder / name, b)
    names = [n.encode() for n in CIFAR100_INFO.class_names]
    dump(folder / "meta", {b"fine_label_names": names, b"coarse_label_names": [b"c%d" % i for i in range(20)]})
    return folder


@pytest.fixture(autouse=True)
def nowhere_else(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_cifar10_train_and_test(tmp_path):
    write_cifar10(tmp_path / "d")
    train = cifar10().load("train", tmp_path / "d")
    assert train.images.shape == (5 * PER_BATCH, 3, 32, 32) and train.images.dtype == torch.uint8
    # batches concatenated in order: image i has red value i and label i % 10
    assert train.images[:, 0, 0, 0].tolist() == list(range(100))
    assert train.labels.tolist() == [i % 10 for i in range(100)]
    # a row is the red plane, then green, then blue
    assert (train.images[7, 0] == 7).all() and (train.images[7, 1] == 100).all() and (train.images[7, 2] == 200).all()
    test = cifar10().load("test", tmp_path / "d")
    assert len(test) == PER_BATCH


def test_cifar10_batch_values_in_unit_range(tmp_path):
    write_cifar10(tmp_path / "d")
    x, y = cifar10().load("train", tmp_path / "d").batch(torch.tensor([2, 5]))
    assert x.dtype == torch.float32 and x.shape == (2, 3, 32, 32)
    assert x[0, 1, 0, 0].item() == pytest.approx(100 / 255) and x[1, 0, 0, 0].item() == pytest.approx(5 / 255)
    assert y.tolist() == [2, 5]


def test_cifar100_fine_labels(tmp_path):
    write_cifar100(tmp_path / "d")
    train = cifar100().load("train", tmp_path / "d")
    assert train.images.shape == (2 * PER_BATCH, 3, 32, 32)
    assert train.labels.tolist() == list(range(2 * PER_BATCH))  # fine labels, not coarse ones
    assert len(cifar100().load("test", tmp_path / "d")) == PER_BATCH


def test_data_dir_may_be_the_batch_folder_itself(tmp_path):
    folder = write_cifar10(tmp_path / "d")
    assert cifar10().locate(folder).found == folder
    assert len(cifar10().load("test", folder)) == PER_BATCH


def test_system_folder_is_searched(tmp_path):
    folder = write_cifar10(tmp_path / "system")
    assert cifar10().locate(None).found == folder


def test_missing_says_where_and_what_layout(tmp_path):
    data_dir = tmp_path / "d"
    with pytest.raises(DataNotFoundError) as err:
        cifar100().load("train", data_dir)
    message = str(err.value)
    for place in (data_dir / "cifar-100-python", data_dir, tmp_path / "system" / "cifar-100-python",
                  tmp_path / "cache" / "trendcli" / "cifar-100-python"):
        assert str(place) in message
    assert "cifar-100-python.tar.gz" in message and "train, test, meta" in message


def test_incomplete_folder_is_not_found(tmp_path):
    folder = write_cifar10(tmp_path / "d")
    (folder / "data_batch_3").unlink()
    loc = cifar10().locate(tmp_path / "d")
    assert loc.found is None and str(folder) in loc.searched


def test_meta_of_another_dataset_is_refused(tmp_path):
    write_cifar10(tmp_path / "d", names=CIFAR100_INFO.class_names[:10])
    with pytest.raises(DataNotFoundError, match="not cifar10's"):
        cifar10().load("train", tmp_path / "d")


def test_corrupt_batch_names_the_file(tmp_path):
    folder = write_cifar10(tmp_path / "d")
    (folder / "test_batch").write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(DataNotFoundError) as err:
        cifar10().load("test", tmp_path / "d")
    assert str(folder / "test_batch") in str(err.value)


def test_wrong_label_key_is_refused(tmp_path):
    folder = write_cifar10(tmp_path / "d")
    dump(folder / "test_batch", batch(4, 0, 10, b"fine_labels"))
    with pytest.raises(DataNotFoundError, match="no 'labels' entry"):
        cifar10().load("test", tmp_path / "d")


def test_label_out_of_range(tmp_path):
    folder = write_cifar10(tmp_path / "d")
    bad = batch(4, 0, 10, b"labels")
    bad[b"labels"][1] = 10
    dump(folder / "test_batch", bad)
    with pytest.raises(DataNotFoundError, match="outside 0..9"):
        cifar10().load("test", tmp_path / "d")


def test_official_splits_only(tmp_path):
    write_cifar10(tmp_path / "d")
    with pytest.raises(UsageError):
        cifar10().load("val", tmp_path / "d")


def test_infos():
    assert (CIFAR10_INFO.num_classes, len(CIFAR10_INFO.class_names)) == (10, 10)
    assert (CIFAR100_INFO.num_classes, len(CIFAR100_INFO.class_names)) == (100, 100)
    assert list(CIFAR100_INFO.class_names) == sorted(CIFAR100_INFO.class_names)  # the meta file's order
    assert CIFAR10_INFO.mean == (0.4914, 0.4822, 0.4465) and CIFAR10_INFO.std == (0.2023, 0.1994, 0.2010)
