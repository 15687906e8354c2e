"""Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747): 28x28 grayscale, 10 classes, idx files."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from trendcli.errors import DataNotFoundError, UsageError
from trendcli.datasets.base import DatasetInfo, Location, TensorImages
from trendcli.datasets.idx import read_idx
from trendcli.datasets.locations import SYSTEM_ROOT, cache_dir, file_key

# mean/std: every pixel of the 60,000 training images scaled to [0, 1], computed from the
# Debian files (0.2860405970 / 0.3530242445); data/fashion_mnist.json holds the same values.
INFO = DatasetInfo(
    name="fashion_mnist",
    channels=1,
    image_size=28,
    num_classes=10,
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    mean=(0.2860,),
    std=(0.3530,),
)

#: split -> (images file, labels file), without the optional ``.gz``.
FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SYSTEM_DIR = SYSTEM_ROOT / "fashion-mnist"
TORCHVISION_SUBDIR = Path("FashionMNIST") / "raw"  # where torchvision's download puts the files
HINT = (
    "as root: apt-get install dataset-fashion-mnist, or pass --data-dir DIR containing "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
    "t10k-labels-idx1-ubyte.gz (or DIR/FashionMNIST/raw/ as torchvision downloads them)"
)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four idx files in ``folder`` (``.gz`` preferred over uncompressed), or None if any is missing."""
    found = {stem: _find(folder, stem) for pair in FILES.values() for stem in pair}
    if any(p is None for p in found.values()):
        return None
    return found  # type: ignore[return-value]


def search_dirs(data_dir: Path | None) -> list[Path]:
    """Folders tried in order: --data-dir and its torchvision layout, the Debian folder, the download cache."""
    dirs: list[Path] = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        dirs += [data_dir, data_dir / TORCHVISION_SUBDIR]
    dirs.append(SYSTEM_DIR)
    if data_dir is None:
        dirs.append(cache_dir() / TORCHVISION_SUBDIR)
    return dirs


def download(root: Path) -> None:
    """Fetch the files with torchvision into ``root/FashionMNIST/raw`` (needs the network)."""
    from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST  # slow import: only here

    TorchvisionFashionMNIST(str(root), train=True, download=True)


@functools.lru_cache(maxsize=4)
def _read_split(images_key: tuple[str, int, int], labels_key: tuple[str, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    images_path, labels_path = Path(images_key[0]), Path(labels_key[0])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataNotFoundError(f"{images_path} holds {images.dtype} {list(images.shape)}, not uint8 [N, 28, 28] images")
    if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
        raise DataNotFoundError(
            f"{labels_path} holds {labels.dtype} {list(labels.shape)}, not {len(images)} uint8 labels "
            f"for the images in {images_path.name}"
        )
    if len(labels) and int(labels.max()) >= INFO.num_classes:
        raise DataNotFoundError(f"{labels_path} has label {int(labels.max())}; Fashion-MNIST labels are 0..9")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


class FashionMNIST:
    """The ``fashion_mnist`` dataset source (files from --data-dir, Debian, or torchvision's download)."""

    info = INFO

    def locate(self, data_dir: Path | None) -> Location:
        """The first folder holding all four idx files; every folder tried otherwise."""
        searched: list[str] = []
        for folder in search_dirs(data_dir):
            if find_files(folder) is not None:
                return Location(found=folder, searched=searched + [str(folder)], hint=HINT)
            searched.append(str(folder))
        return Location(found=None, searched=searched, hint=HINT)

    def load(self, split: str, data_dir: Path | None) -> TensorImages:
        """The official ``train`` (60,000) or ``test`` (10,000) split as uint8 ``[N, 1, 28, 28]``.

        Downloads with torchvision into ``data_dir`` (or the cache) when no folder has the files.
        Loaded arrays are cached in-process by file; do not modify them in place.
        """
        if split not in FILES:
            raise UsageError(f"fashion_mnist's official splits are train and test, not {split!r}")
        loc = self.locate(data_dir)
        if loc.found is None:
            root = Path(data_dir).expanduser() if data_dir is not None else cache_dir()
            created = [d for d in (root / TORCHVISION_SUBDIR, root / TORCHVISION_SUBDIR.parent, root) if not d.exists()]
            try:
                download(root)
            except (RuntimeError, OSError) as e:  # offline, proxy, checksum mismatch, disk full
                for d in created:  # leave no empty folders behind
                    if d.is_dir() and not any(d.iterdir()):
                        d.rmdir()
                reason = " ".join(str(e).split())[:300] or type(e).__name__  # one line
                raise DataNotFoundError(
                    f"Fashion-MNIST not found in {', '.join(loc.searched)}; downloading into "
                    f"{root / TORCHVISION_SUBDIR} failed ({reason}); {HINT}"
                ) from None
            loc = self.locate(data_dir)
            if loc.found is None:
                raise DataNotFoundError(
                    f"Fashion-MNIST not found in {', '.join(loc.searched)} even after downloading; {HINT}"
                )
        files = find_files(loc.found)
        if files is None:  # removed between locate and here
            raise DataNotFoundError(f"Fashion-MNIST files disappeared from {loc.found}; {HINT}")
        images_stem, labels_stem = FILES[split]
        images, labels = _read_split(file_key(files[images_stem]), file_key(files[labels_stem]))
        return TensorImages(images, labels)
