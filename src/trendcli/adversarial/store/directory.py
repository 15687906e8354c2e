"""The store directory (``AdvStore``): where each key's files live, lookup, listing, removal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from trendcli.adversarial.store.files import write_failure
from trendcli.adversarial.store.keys import check_key, is_key
from trendcli.adversarial.store.predictions import PredictionCache
from trendcli.adversarial.store.reader import AdvSet
from trendcli.adversarial.store.writer import DEFAULT_CHUNK_SIZE, AdvSetWriter
from trendcli.errors import StoreError

DEFAULT_ROOT = Path("runs/adv")


class AdvStore:
    """A directory of adversarial sets, one ``<key>.h5`` per set (default ``runs/adv``).

    Beside a set being written lie ``<key>.partial.h5`` and its writers' lock ``<key>.lock``;
    ``predictions/`` holds the prediction cache (store/predictions.py).
    """

    def __init__(self, root: Path | str = DEFAULT_ROOT):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"AdvStore({str(self.root)!r})"

    @property
    def predictions(self) -> PredictionCache:
        """The cache of targets' predictions on this store's sets (``<root>/predictions``)."""
        return PredictionCache(self.root / "predictions")

    def path(self, key: str) -> Path:
        """Where the finished set for ``key`` lives."""
        return self.root / f"{check_key(key)}.h5"

    def partial_path(self, key: str) -> Path:
        """Where an unfinished set for ``key`` is written."""
        return self.root / f"{check_key(key)}.partial.h5"

    def lock_path(self, key: str) -> Path:
        """The lock file that lets one process at a time write the set for ``key``."""
        return self.root / f"{check_key(key)}.lock"

    def lock(self, key: str) -> FileLock:
        """The (not yet acquired) lock that writers and ``remove`` of ``key`` take."""
        return FileLock(self.lock_path(key), thread_local=False)

    def _check_root(self) -> None:
        """StoreError when the store root (or a folder above it) is a file, not a directory."""
        for p in (self.root, *self.root.parents):
            if p.is_dir():
                return
            if p.exists():
                what = f"store {p}" if p == self.root else f"{p} (a folder above the store {self.root})"
                raise StoreError(
                    f"{what} is a file, not a directory; pass a directory as the store (store=..., default {DEFAULT_ROOT})"
                )

    def ensure_root(self) -> None:
        """Create the store directory if needed; StoreError (naming it and the fix) if it cannot be."""
        self._check_root()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store directory {self.root} ({exc.strerror or exc}); "
                "create it, make its parent writable, or pass another store directory (store=...)"
            ) from exc

    def get(self, key: str) -> AdvSet | None:
        """The finished set for ``key`` (checked, handle closed until used), or None if absent.

        Raises StoreError when the file is corrupt or foreign, or the store is not a directory.
        """
        path = self.path(key)
        self._check_root()
        if not path.exists():
            return None
        s = AdvSet(path, key)
        s._h5()
        s.close()
        return s

    def writer(
        self,
        key: str,
        spec: Mapping[str, Any],
        *,
        n: int,
        image_shape: tuple[int, int, int],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        timeout: float | None = None,
        on_wait: Callable[[Path], None] | None = None,
    ) -> AdvSetWriter:
        """A resumable, atomic writer for the set ``key`` = content_key(spec); use with ``with``.

        On a key whose set is already finished the writer signals it instead of raising:
        ``already_complete`` is True, no chunks are pending and ``finish()`` returns the set.
        While another process writes the key, entering the writer waits (``timeout`` seconds at
        most; None: until it is done), calling ``on_wait(lock_path)`` once when it starts to wait.
        """
        return AdvSetWriter(self, key, spec, n, image_shape, chunk_size, timeout=timeout, on_wait=on_wait)

    def remove(self, key: str) -> bool:
        """Delete the set and any partial file for ``key`` (for force=True); True if anything went.

        Waits for a process writing ``key`` to finish first, so its files are not pulled away
        from under it.
        """
        self._check_root()
        self.predictions.remove_set(key)  # predictions on the old images would be stale
        paths = [p for p in (self.path(key), self.partial_path(key)) if p.exists()]
        for p in paths:
            if p.is_dir():
                raise StoreError(f"{p} is a directory where the adversarial set file should be; remove or rename it")
        if not paths:
            return False
        try:
            with self.lock(key):
                for p in paths:
                    p.unlink(missing_ok=True)
        except OSError as exc:
            raise write_failure(exc, Path(exc.filename) if exc.filename else self.lock_path(key)) from exc
        return True

    def list(self) -> dict[str, dict]:
        """Every finished set in the store: key -> spec, sorted by key (StoreError on a bad file)."""
        out: dict[str, dict] = {}
        self._check_root()
        if not self.root.is_dir():
            return out
        for p in sorted(self.root.glob("*.h5")):
            key = p.name.removesuffix(".h5")
            if not is_key(key):
                continue  # partials and files that are not named by a key
            with AdvSet(p, key) as s:
                out[key] = s.spec
        return out
