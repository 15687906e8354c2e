"""The dataset API: lookup by name, the seeded split, batches, the survey, and data/."""

from __future__ import annotations

import dataclasses
import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import trendcli.builtins.datasets as builtin_datasets
from trendcli.data import describe_datasets, get_dataset, iterate_batches, load_split
from trendcli.datasets import cifar, fashion_mnist, imagenet
from trendcli.datasets.base import split_indices
from trendcli.errors import DataNotFoundError, UnknownNameError, UsageError
from trendcli.registry import Registry, set_registry

DATA = Path(__file__).resolve().parents[1] / "data"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["cifar10", "cifar100", "fashion_mnist", "imagenet"]


def write_fashion(folder: Path, n_train: int, n_test: int) -> None:
    """Four gzip idx files; image i has pixel [0, 0] = i and label i % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = np.arange(n)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            (folder / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))


@pytest.fixture(autouse=True)
def only_builtin_datasets(tmp_path, monkeypatch):
    """A fresh registry with just the built-in datasets; no system folders, cache or download."""
    registry = Registry(load_entrypoints=False)
    registry.register(builtin_datasets, name="trendcli:datasets", dist="trendcli")
    set_registry(registry)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "system" / "fashion-mnist")
    monkeypatch.setattr(cifar, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setattr(imagenet, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(root: Path) -> None:
        raise RuntimeError("no network")

    monkeypatch.setattr(fashion_mnist, "download", offline)
    yield
    set_registry(None)


def test_get_dataset_accepts_hyphens():
    assert get_dataset("fashion-mnist").info.name == "fashion_mnist"
    assert get_dataset("cifar100").info.num_classes == 100


def test_unknown_dataset_lists_the_known():
    with pytest.raises(UnknownNameError, match="cifar10, cifar100, fashion_mnist, imagenet"):
        get_dataset("mnist")


def test_split_indices_sizes_disjoint_and_cover():
    train, val = split_indices(20, seed=0)
    assert (len(train), len(val)) == (18, 2)  # val = round(20 * 0.1) = 2
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(20))
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)


def test_split_indices_deterministic_per_seed():
    a, b = split_indices(1000, seed=3), split_indices(1000, seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(split_indices(1000, seed=4)[1], a[1])
    assert [len(p) for p in a] == [900, 100]


def test_load_split_train_val_test(tmp_path):
    write_fashion(tmp_path / "d", n_train=30, n_test=7)
    data, train = load_split("fashion-mnist", "train", tmp_path / "d", split_seed=1)
    same, val = load_split("fashion_mnist", "val", tmp_path / "d", split_seed=1)
    assert len(data) == 30 and same.images is data.images  # one cached train set for both
    assert (len(train), len(val)) == (27, 3)  # 10% of 30
    assert sorted(train.tolist() + val.tolist()) == list(range(30))
    assert torch.equal(val, split_indices(30, 1)[1])
    _, other_val = load_split("fashion_mnist", "val", tmp_path / "d", split_seed=2)
    assert not torch.equal(other_val, val)
    test_data, test = load_split("fashion_mnist", "test", tmp_path / "d")
    assert len(test_data) == 7 and test.tolist() == list(range(7))


def test_load_split_unknown_split(tmp_path):
    with pytest.raises(UsageError, match="train, val, test"):
        load_split("fashion_mnist", "validation", tmp_path)


def test_load_split_missing_data(tmp_path):
    with pytest.raises(DataNotFoundError, match="no network"):
        load_split("fashion_mnist", "train", tmp_path / "d")


def test_iterate_batches_in_order(tmp_path):
    write_fashion(tmp_path / "d", n_train=12, n_test=2)
    data, _ = load_split("fashion_mnist", "train", tmp_path / "d")
    indices = torch.tensor([11, 3, 5, 0, 7, 9, 1])
    batches = list(iterate_batches(data, indices, batch_size=3))
    assert [len(y) for _, y in batches] == [3, 3, 1]
    pixels = torch.cat([x[:, 0, 0, 0] for x, _ in batches]) * 255  # pixel [0, 0] is the index
    assert pixels.round().long().tolist() == indices.tolist()
    assert torch.cat([y for _, y in batches]).tolist() == (indices % 10).tolist()
    with pytest.raises(UsageError):
        next(iterate_batches(data, indices, 0))


def test_describe_datasets_found_and_missing(tmp_path):
    write_fashion(tmp_path / "d", n_train=2, n_test=1)
    rows = {row["name"]: row for row in describe_datasets(tmp_path / "d")}
    assert sorted(rows) == NAMES
    fm = rows["fashion_mnist"]
    assert fm["found"] and fm["location"] == str(tmp_path / "d")
    assert (fm["shape"], fm["classes"]) == ((1, 28, 28), 10)
    c10 = rows["cifar10"]
    assert not c10["found"] and c10["location"] is None
    assert str(tmp_path / "d" / "cifar-10-batches-py") in c10["searched"]
    assert "cifar-10-python.tar.gz" in c10["hint"]
    assert rows["imagenet"]["shape"] == (3, 224, 224) and rows["imagenet"]["classes"] == 1000


def test_describe_datasets_without_data_dir(tmp_path):
    rows = {row["name"]: row for row in describe_datasets(None)}
    assert not any(row["found"] for row in rows.values())
    assert rows["fashion_mnist"]["searched"] == [
        str(tmp_path / "system" / "fashion-mnist"),
        str(tmp_path / "cache" / "trendcli" / "FashionMNIST" / "raw"),
    ]
    assert "apt-get install dataset-fashion-mnist" in rows["fashion_mnist"]["hint"]


@pytest.mark.parametrize("name", NAMES)
def test_json_in_data_matches_the_code(name):
    stored = json.loads((DATA / f"{name}.json").read_text())
    info = dataclasses.asdict(get_dataset(name).info)
    assert stored == json.loads(json.dumps(info))  # tuples compare as lists


def test_samples_one_per_class():
    files = sorted((DATA / "samples").glob("*.png"))
    assert [int(f.name.split("_")[0]) for f in files] == list(range(10))
    assert files[0].name == "0_tshirt-top.png" and files[9].name == "9_ankle-boot.png"
    for f in files:
        image = Image.open(f)
        assert (image.mode, image.size) == ("L", (28, 28))


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="dataset-fashion-mnist not installed")
def test_samples_are_the_first_test_image_of_each_class():
    test = get_dataset("fashion_mnist").load("test", DEBIAN)
    for f in sorted((DATA / "samples").glob("*.png")):
        label = int(f.name.split("_")[0])
        first = int((test.labels == label).nonzero()[0])
        assert np.array_equal(np.asarray(Image.open(f)), test.images[first, 0].numpy()), f.name
