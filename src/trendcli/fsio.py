"""Atomic file and directory writes (temp name + rename) and content hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from trendcli.errors import FileAccessError, OutputExistsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: str | Path, mode: int) -> None:
    """Give a file/dir the permissions a plain create would (mkstemp, mkdtemp and some writers make
    them private): ``mode`` less the umask, so a shared run directory stays readable."""
    os.chmod(path, mode & ~_umask())




def check_output(
    path: Path,
    what: str,
    is_ours: Callable[[Path], bool],
    force: bool = False,
    directory: bool = False,
    own_files: Iterable[str] = (),
) -> bool:
    """Refuse to write ``path`` over anything trendcli did not write; True when it exists already.

    Absent: fine. A path of the wrong kind (a file where a directory goes, or the reverse), or
    one that ``is_ours`` does not recognise as a finished trendcli ``what``: OutputExistsError.
    A finished artifact of the same kind is replaced only with ``force``; a directory is replaced
    only if it holds nothing but ``own_files`` (so nothing the user put there is lost).
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return False
    if directory and not path.is_dir():
        raise OutputExistsError(f"{path} exists and is not a directory; choose another output path for the {what}")
    if not directory and path.is_dir():
        raise OutputExistsError(f"{path} is a directory; give a file path for the {what}")
    if not is_ours(path):
        raise OutputExistsError(
            f"{path} exists and is not a {what} written by trendcli; choose another output path or move it away"
        )
    if not force:
        raise OutputExistsError(f"{path} already holds a finished {what}; pass force=True (--force) to replace it")
    if directory:
        foreign = sorted(p.name for p in path.iterdir() if p.name not in set(own_files))
        if foreign:
            raise OutputExistsError(
                f"{path} holds files trendcli did not write ({', '.join(foreign[:3])}); move them away before replacing the {what}"
            )
    return True


def writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` (and parents) or say in one line why it cannot be written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FileAccessError(f"{path} is a file, not a directory; choose another path for the {what}") from None
    except OSError as exc:
        raise FileAccessError(f"cannot create {path} for the {what}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise FileAccessError(f"{path} is not writable (permissions or a read-only filesystem); choose another path for the {what}")
    return path


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temp file in the same directory and ``os.replace``.

    An OSError (read-only directory, a directory at ``path``, no space) becomes one
    FileAccessError naming the path; ``path`` keeps its previous content.
    """
    path = Path(path)
    if path.is_dir():
        raise FileAccessError(f"{path} is a directory; give a file path for the JSON output")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileExistsError:
        raise FileAccessError(f"cannot write {path}: {path.parent} is a file, not a directory") from None
    except OSError as exc:
        raise FileAccessError(f"cannot write {path}: {exc.strerror}") from None
    try:
        public_mode(tmp, 0o666)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FileAccessError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp directory beside ``final``; on success it replaces ``final`` whole.

    An exception (or a kill) leaves ``final`` as it was: either absent or the previous
    complete version.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    except FileExistsError:
        raise FileAccessError(f"cannot write {final}: {final.parent} is a file, not a directory") from None
    except OSError as exc:
        raise FileAccessError(f"cannot write {final}: {exc.strerror}") from None
    public_mode(tmp, 0o777)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
