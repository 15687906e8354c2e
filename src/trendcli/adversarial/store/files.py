"""File-system plumbing of the store: opening HDF5 files, fsync, and OSError -> StoreError.

HDF5's own file locking is switched off for every file the store opens: writers of a key are
serialised by the store's lock file (``<key>.lock``, see writer.py), finished sets are never
written again, and clusters often disable HDF5 locking anyway (HDF5_USE_FILE_LOCKING=FALSE)
because their file systems do not support it.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import h5py

from trendcli.errors import StoreError

_NO_SPACE = ("errno = 28", "No space left on device")
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
#: Room kept free beyond a chunk's raw bytes, for HDF5 metadata (B-tree nodes, attributes).
SPACE_MARGIN = 1 << 20


def open_h5(path: Path, mode: str) -> h5py.File:
    """``h5py.File(path, mode)`` without HDF5 file locking."""
    return h5py.File(path, mode, locking=False)


def is_no_space(exc: BaseException) -> bool:
    """Is ``exc`` a full disk (ENOSPC), as raised by Python or reported by HDF5 (a RuntimeError)?"""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return isinstance(exc, (OSError, RuntimeError)) and any(s in str(exc) for s in _NO_SPACE)


def check_space(path: Path, nbytes: int) -> None:
    """Raise OSError(ENOSPC) unless the file system of ``path`` has ``nbytes`` + SPACE_MARGIN free.

    Checked before HDF5 writes: after HDF5 itself fails to flush for want of space, its file
    handle cannot be closed cleanly (h5py then crashes at exit), whereas a refusal up front
    leaves the partial file closed and resumable.
    """
    free = shutil.disk_usage(path.parent).free
    if free < nbytes + SPACE_MARGIN:
        raise OSError(errno.ENOSPC, f"{free} bytes free, {nbytes + SPACE_MARGIN} needed", str(path))


def write_failure(exc: OSError | RuntimeError, path: Path) -> StoreError:
    """A StoreError for an error raised while writing ``path``: what happened and what to do."""
    if is_no_space(exc):
        return StoreError(f"no space left on device writing {path}; free space and rerun to resume")
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return StoreError(f"{path} is a directory where the store writes a file; remove or rename it")
    if isinstance(exc, OSError) and exc.errno in _NOT_WRITABLE:
        return StoreError(
            f"cannot write {path} ({exc.strerror}); make the store directory {path.parent} writable "
            "or pass another store directory (store=...)"
        )
    return StoreError(f"cannot write {path} ({type(exc).__name__}: {exc}); fix the store directory and rerun to resume")


def fsync(path: Path) -> None:
    """Push a file (or, on POSIX, a directory entry) to disk so a rename survives a crash."""
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
