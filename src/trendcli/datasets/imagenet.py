"""ImageNet-1k (ILSVRC 2012) from an ImageFolder tree: ``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``.

Images are decoded on demand: resized so the shorter side is 256, center-cropped to 224, scaled
to [0, 1]. Labels are ImageFolder's: the index of the class folder in sorted order, which for
the full 1000 wnid folders is the standard ImageNet-1k order.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from trendcli.errors import DataNotFoundError, UsageError
from trendcli.datasets.base import DatasetInfo, Location
from trendcli.datasets.locations import SYSTEM_ROOT, cache_dir

RESIZE = 256
CROP = 224
NUM_CLASSES = 1000
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
#: official split -> folder under the dataset root ("test" is the public validation set).
SPLIT_FOLDERS = {"train": "train", "test": "val"}
HINT = (
    "pass --data-dir DIR where DIR/train/<wnid>/*.JPEG and DIR/val/<wnid>/*.JPEG hold the ILSVRC 2012 "
    "images, one folder per class (as torchvision.datasets.ImageFolder reads them)"
)


@functools.cache
def imagenet_info() -> DatasetInfo:
    """3x224, 1000 classes named as torchvision's ImageNet-1k weights name them (sorted-wnid order)."""
    from torchvision.models import ResNet18_Weights  # slow import: only when asked

    names = tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    return DatasetInfo(
        name="imagenet", channels=3, image_size=CROP, num_classes=NUM_CLASSES, class_names=names, mean=MEAN, std=STD
    )


def _class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


class ImageFolderData:
    """A split read from class folders; ``batch`` decodes, resizes and center-crops on demand."""

    def __init__(self, root: Path, resize: int = RESIZE, crop: int = CROP):
        from torchvision import datasets, transforms

        transform = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor()])
        try:
            self.folder = datasets.ImageFolder(str(root), transform=transform)
        except (FileNotFoundError, OSError) as e:  # no class folders, or a class folder with no images
            raise DataNotFoundError(f"cannot read {root} as class folders of images: {e}") from None
        self.root = Path(root)
        self.crop = crop
        self.classes: list[str] = list(self.folder.classes)
        self.labels = torch.tensor(self.folder.targets, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[B, 3, crop, crop]`` float32 in [0, 1] and their labels ``[B]``."""
        images = []
        for i in indices.tolist():
            try:
                images.append(self.folder[i][0])
            except OSError as e:  # PIL's UnidentifiedImageError and truncated files
                raise DataNotFoundError(f"cannot decode {self.folder.samples[i][0]}: {e}") from None
        stacked = torch.stack(images) if images else torch.empty(0, 3, self.crop, self.crop)
        return stacked, self.labels[indices]


@functools.lru_cache(maxsize=4)
def _image_folder(root: str) -> ImageFolderData:
    # Scanning 1.28M files takes a while: once per process and folder.
    return ImageFolderData(Path(root))


class ImageNet:
    """The ``imagenet`` dataset source (ImageFolder trees; never downloaded)."""

    @property
    def info(self) -> DatasetInfo:
        return imagenet_info()

    def search_dirs(self, data_dir: Path | None) -> list[Path]:
        """Folders tried in order: DIR, DIR/imagenet, then the system folder and the cache."""
        dirs: list[Path] = []
        if data_dir is not None:
            data_dir = Path(data_dir).expanduser()
            dirs += [data_dir, data_dir / "imagenet"]
        return dirs + [SYSTEM_ROOT / "imagenet", cache_dir() / "imagenet"]

    def locate(self, data_dir: Path | None) -> Location:
        """The first folder with a ``train/`` or ``val/`` subfolder; every folder tried otherwise."""
        searched: list[str] = []
        for folder in self.search_dirs(data_dir):
            searched.append(str(folder))
            if any((folder / sub).is_dir() for sub in SPLIT_FOLDERS.values()):
                return Location(found=folder, searched=searched, hint=HINT)
        return Location(found=None, searched=searched, hint=HINT)

    def load(self, split: str, data_dir: Path | None) -> ImageFolderData:
        """The official ``train`` split (``train/``) or ``test`` split (``val/``).

        Refuses trees whose train/ and val/ class folders differ (their labels would disagree)
        or that have more than 1000 classes. A tree with fewer classes is read as it is (labels
        0..k-1 in sorted folder order), which suits smoke tests, not ImageNet-1k models.
        """
        if split not in SPLIT_FOLDERS:
            raise UsageError(f"imagenet's official splits are train and test (val/), not {split!r}")
        loc = self.locate(data_dir)
        if loc.found is None:
            raise DataNotFoundError(f"imagenet not found in {', '.join(loc.searched)}; {HINT}")
        folder = loc.found / SPLIT_FOLDERS[split]
        if not folder.is_dir():
            raise DataNotFoundError(f"imagenet at {loc.found} has no {SPLIT_FOLDERS[split]}/ folder; {HINT}")
        classes = _class_folders(folder)
        if len(classes) > NUM_CLASSES:
            raise DataNotFoundError(f"{folder} has {len(classes)} class folders; ImageNet-1k has {NUM_CLASSES}")
        other = loc.found / SPLIT_FOLDERS["test" if split == "train" else "train"]
        if other.is_dir() and _class_folders(other) != classes:
            raise DataNotFoundError(
                f"{folder} and {other} have different class folders ({len(classes)} vs "
                f"{len(_class_folders(other))}); labels are folder indices, so they must match"
            )
        return _image_folder(str(folder.resolve()))
