"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from the python pickle batches, 3x32x32.

The files are read directly (not through torchvision.datasets.CIFAR10, whose md5 check refuses
anything but the official archive). They are pickles: read only files you trust.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trendcli.errors import DataNotFoundError, UsageError
from trendcli.datasets.base import DatasetInfo, Location, TensorImages
from trendcli.datasets.locations import SYSTEM_ROOT, cache_dir, file_key

CIFAR10_INFO = DatasetInfo(
    name="cifar10",
    channels=3,
    image_size=32,
    num_classes=10,
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    # docs/method.md ("Training"): the values the authors normalize with.
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2023, 0.1994, 0.2010),
)

CIFAR100_INFO = DatasetInfo(
    name="cifar100",
    channels=3,
    image_size=32,
    num_classes=100,
    class_names=(
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
        "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
        "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
        "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
        "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ),
    # Per-channel mean/std of the CIFAR-100 training pixels (the values commonly used with it).
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
)


@dataclass(frozen=True)
class CifarLayout:
    """Where the files of one CIFAR variant are, as torchvision unpacks the official archive."""

    folder: str  # under --data-dir
    splits: dict[str, tuple[str, ...]]  # official split -> batch files
    meta: str  # file with the class names
    labels_key: bytes
    names_key: bytes
    archive: str  # what to download when the files are missing
    listing: str  # the files, briefly, for messages

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for batch in self.splits.values() for f in batch) + (self.meta,)


CIFAR10_LAYOUT = CifarLayout(
    folder="cifar-10-batches-py",
    splits={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
    meta="batches.meta",
    labels_key=b"labels",
    names_key=b"label_names",
    archive="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    listing="data_batch_1..5, test_batch, batches.meta",
)

CIFAR100_LAYOUT = CifarLayout(
    folder="cifar-100-python",
    splits={"train": ("train",), "test": ("test",)},
    meta="meta",
    labels_key=b"fine_labels",
    names_key=b"fine_label_names",
    archive="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    listing="train, test, meta",
)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    # A damaged pickle can fail in many ways (UnpicklingError, EOFError, ValueError, KeyError, ...).
    except Exception as e:  # noqa: BLE001
        raise DataNotFoundError(f"cannot read {path} as a CIFAR pickle ({type(e).__name__}: {e}); fetch it again") from None
    if not isinstance(obj, dict):
        raise DataNotFoundError(f"{path} holds a {type(obj).__name__}, not a CIFAR batch dictionary")
    return obj


def read_batch(path: Path, labels_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch: uint8 images ``[N, 3, 32, 32]`` and int64 labels ``[N]``."""
    batch = _unpickle(path)
    for key in (b"data", labels_key):
        if key not in batch:
            raise DataNotFoundError(f"{path} has no {key.decode()!r} entry; is it a CIFAR batch of the right kind?")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[labels_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataNotFoundError(f"{path}: 'data' is {data.dtype} {list(data.shape)}, not uint8 [N, 3072]")
    if labels.shape != (len(data),):
        raise DataNotFoundError(f"{path}: {labels.size} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataNotFoundError(f"{path}: labels outside 0..{num_classes - 1}")
    # Each row is the red plane, then green, then blue, each 32x32 row-major.
    return data.reshape(-1, 3, 32, 32), labels


def read_class_names(path: Path, names_key: bytes) -> tuple[str, ...]:
    """The class names in a CIFAR meta file."""
    meta = _unpickle(path)
    if names_key not in meta:
        raise DataNotFoundError(f"{path} has no {names_key.decode()!r} entry; is it the right meta file?")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key])


@functools.lru_cache(maxsize=4)
def _read_split(keys: tuple[tuple[str, int, int], ...], labels_key: bytes, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [read_batch(Path(k[0]), labels_key, num_classes) for k in keys]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)


class Cifar:
    """A CIFAR dataset source: files under --data-dir, the system folder, or the cache (no download)."""

    def __init__(self, info: DatasetInfo, layout: CifarLayout):
        self.info = info
        self.layout = layout
        self.hint = (
            f"download {layout.archive}, unpack it in DIR (giving DIR/{layout.folder}/ with "
            f"{layout.listing}) and pass --data-dir DIR"
        )

    def search_dirs(self, data_dir: Path | None) -> list[Path]:
        """Folders tried in order: DIR/<folder>, DIR itself, then the system folder and the cache."""
        dirs: list[Path] = []
        if data_dir is not None:
            data_dir = Path(data_dir).expanduser()
            dirs += [data_dir / self.layout.folder, data_dir]
        return dirs + [SYSTEM_ROOT / self.layout.folder, cache_dir() / self.layout.folder]

    def locate(self, data_dir: Path | None) -> Location:
        """The first folder holding every batch and the meta file; every folder tried otherwise."""
        searched: list[str] = []
        for folder in self.search_dirs(data_dir):
            searched.append(str(folder))
            if all((folder / f).is_file() for f in self.layout.files):
                return Location(found=folder, searched=searched, hint=self.hint)
        return Location(found=None, searched=searched, hint=self.hint)

    def load(self, split: str, data_dir: Path | None) -> TensorImages:
        """The official ``train`` (50,000) or ``test`` (10,000) split as uint8 ``[N, 3, 32, 32]``.

        Checks that the meta file's class names are this dataset's. Loaded arrays are cached
        in-process by file; do not modify them in place.
        """
        if split not in self.layout.splits:
            raise UsageError(f"{self.info.name}'s official splits are train and test, not {split!r}")
        loc = self.locate(data_dir)
        if loc.found is None:
            raise DataNotFoundError(f"{self.info.name} not found in {', '.join(loc.searched)}; {self.hint}")
        meta = loc.found / self.layout.meta
        names = read_class_names(meta, self.layout.names_key)
        if names != self.info.class_names:
            raise DataNotFoundError(
                f"{meta} lists {len(names)} classes ({', '.join(names[:3])}, ...) that are not "
                f"{self.info.name}'s; is --data-dir pointing at another dataset?"
            )
        keys = tuple(file_key(loc.found / f) for f in self.layout.splits[split])
        images, labels = _read_split(keys, self.layout.labels_key, self.info.num_classes)
        return TensorImages(images, labels)


def cifar10() -> Cifar:
    """The ``cifar10`` dataset source."""
    return Cifar(CIFAR10_INFO, CIFAR10_LAYOUT)


def cifar100() -> Cifar:
    """The ``cifar100`` dataset source."""
    return Cifar(CIFAR100_INFO, CIFAR100_LAYOUT)
