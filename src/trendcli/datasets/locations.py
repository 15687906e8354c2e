"""Where built-in datasets are looked for when no --data-dir is given, and file identity."""

from __future__ import annotations

import os
from pathlib import Path

#: Debian's dataset packages (``apt-get install dataset-fashion-mnist``) install here.
SYSTEM_ROOT = Path("/usr/share/datasets")


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/trendcli``, else ``~/.cache/trendcli``: where downloads go."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "trendcli"


def file_key(path: Path) -> tuple[str, int, int]:
    """Resolved path, mtime and size: a cache key that changes when the file is replaced."""
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size
