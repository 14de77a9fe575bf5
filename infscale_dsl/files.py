"""Outputs that are checked before the work and never left half-written.

`check_output_file` and `check_output_folder` fail at once, before a fit or a sweep starts, on an
output that cannot be written (a wrong extension, a folder where a file should go, a path under
a file, no permission). `atomic_write` writes a file to a temporary name and renames it;
`replace_folder` does the same for a whole folder (a fit folder), so that a reader sees the old
folder or the new one, never a mix.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from .errors import ConfigError, DataError, Diagnostic, listed

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")  # the formats read_table and write_table know
STDIO = "-"  # a table path or output given as `-`: standard input (CSV or Parquet), or standard output
STDIN_NAME = "<stdin>"  # how diagnostics name a table read from standard input
_interrupted = False  # a Ctrl-C seen by the command line's handler (mark_interrupted)


def mark_interrupted(seen: bool = True) -> None:
    """Record a Ctrl-C (or, with False, forget one), so that no fit folder is swapped in after it.
    Python drops a KeyboardInterrupt raised inside a garbage-collection callback (JAX registers
    one) with "Exception ignored in ..." and the command carries on; this record does not."""
    global _interrupted
    _interrupted = seen


def was_interrupted() -> bool:
    return _interrupted


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


def check_output_file(path: str | Path, suffixes: Iterable[str], what: str = "output",
                      stdout_ok: bool = False) -> Path | str:
    """ConfigError unless `path` can be written as a file ending in one of `suffixes`; with
    `stdout_ok`, `-` (standard output) passes and comes back as the string `-`."""
    if stdout_ok and str(path) == STDIO:
        return STDIO
    path, suffixes = Path(path), tuple(suffixes)
    if path.suffix.lower() not in suffixes:
        choices = " or ".join([", ".join(suffixes[:-1]), suffixes[-1]] if len(suffixes) > 1 else suffixes)
        raise ConfigError(Diagnostic(f"the {what} must end in {choices}", filename=str(path),
                                     hint=f"name the output {choices}; the extension chooses the format"))
    if path.is_dir():
        raise ConfigError(Diagnostic(f"the {what} is a folder, not a file", filename=str(path),
                                     hint=f"give a file name, e.g. {path / ('out' + suffixes[0])}"))
    _check_parent(path, what)
    return path


def check_output_folder(path: str | Path, own_files: Iterable[str], what: str = "fit folder") -> Path:
    """ConfigError unless `path` can be (re)placed whole by `replace_folder`: a new folder, an
    empty one, or one that holds only `own_files` (an earlier output of the same kind)."""
    if str(path) == STDIO:
        raise ConfigError(Diagnostic(f"a {what} cannot go to standard output (-o -)", filename=STDIO,
                                     hint=f"give a folder name, e.g. -o fit/; the {what} is a folder of files"))
    path = Path(path)
    if path.is_dir() and os.path.ismount(path):  # a mount point cannot be renamed aside for the swap
        raise ConfigError(Diagnostic(f"the {what} would replace a mount point", filename=str(path),
                                     hint=f"give a folder inside it, e.g. {path / 'fit'}"))
    if Path.cwd().resolve().is_relative_to(path.resolve()):  # `-o .`: the swap would move the ground we stand on
        raise ConfigError(Diagnostic(f"the {what} would replace the current folder", filename=str(path),
                                     hint="give a folder below it, e.g. fit/"))
    if path.exists() and not path.is_dir():
        raise ConfigError(Diagnostic(f"cannot write the {what} here: this is an existing file", filename=str(path),
                                     hint=f"choose another name: the {what} is a folder of files"))
    if path.is_dir():
        others = sorted(p.name for p in path.iterdir() if p.name not in set(own_files))
        if others:
            raise ConfigError(Diagnostic(
                f"the {what} already holds other files ({listed(others, 5)})", filename=str(path),
                hint=f"writing a {what} replaces the folder whole: give a new or empty folder, "
                     "or move those files out"))
    _check_parent(path, what)
    return path


def replace_folder(folder: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(temp_folder)` on a new sibling folder, then swap it in with two renames
    (the old folder aside, the new one in), then delete the old one.

    Interrupted before the swap, the old folder is untouched; between the two renames,
    `recover_folder` (called here on the next save, and by readers) puts the complete new folder
    in place. Stale temporaries from interrupted saves are deleted on the next save."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(folder)
    for stale in _temporaries(folder):
        shutil.rmtree(stale, ignore_errors=True)
    token = secrets.token_hex(6)
    new, old = _temporary(folder, "new", token), _temporary(folder, "old", token)
    new.mkdir()
    try:
        write(new)
        if _interrupted:  # the user asked to stop: keep the old folder
            raise KeyboardInterrupt
        if folder.exists():
            os.rename(folder, old)
        os.rename(new, folder)
    finally:
        recover_folder(folder)  # after an error between the renames: the new folder in place
        shutil.rmtree(new, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return folder


def recover_folder(folder: str | Path) -> Path:
    """Finish a swap that `replace_folder` left between its two renames: the folder is gone,
    and its complete new version (or else the old one) waits beside it."""
    folder = Path(folder)
    if folder.exists():
        return folder
    olds = [p for p in _temporaries(folder) if p.name.startswith(f".{folder.name}.old-")]
    if not olds:
        return folder
    new = _temporary(folder, "new", olds[0].name.rsplit("-", 1)[1])
    keep = new if new.is_dir() else olds[0]  # the new folder was complete before the old one moved aside
    try:
        os.rename(keep, folder)
    except OSError as error:
        raise DataError(Diagnostic(f"the folder was left mid-save and cannot be restored: {error.strerror}",
                                   filename=str(folder), hint=f"rename {keep} to {folder}")) from None
    return folder


def _temporary(folder: Path, kind: str, token: str) -> Path:
    return folder.with_name(f".{folder.name}.{kind}-{token}")


def _temporaries(folder: Path) -> list[Path]:
    if not folder.parent.is_dir():
        return []
    prefixes = (f".{folder.name}.new-", f".{folder.name}.old-")
    return sorted(p for p in folder.parent.iterdir() if p.name.startswith(prefixes) and p.is_dir())


def _check_parent(path: Path, what: str) -> None:
    """The nearest existing folder above `path` must be a folder we may write in."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(Diagnostic(f"cannot write the {what}: {parent} is a file, not a folder",
                                     filename=str(path), hint="choose a path that is not under a file"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(Diagnostic(f"cannot write the {what}: no permission to write in {parent}",
                                     filename=str(path), hint="choose a folder you can write in"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
