"""Files that are never left half-written: write to a temporary name, then rename."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call `write(temp_path)`, then rename the temporary file over `path` (atomic on POSIX):
    a reader sees the old file or the new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
