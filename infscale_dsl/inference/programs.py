"""Compiled programs kept on disk by model structure, so that a new process neither traces nor compiles.

JAX's own disk cache (`use_compilation_cache` in fit.py) skips compiling, but finds its entry
by the lowered program, so every new process still traces and lowers each function first: for
a warm `infscale-dsl fit` of Chinchilla that was most of its 14 s. Here a jitted or pmapped
function is wrapped with a key that says what it computes (the model structure, as the
in-process caches use it); its compiled program is stored with `jax.experimental.
serialize_executable` under that key and the arguments' shapes, and a later process loads it
and runs it without tracing anything.

    search = StoredProgram(("point fit",) + structure_key, jax.jit(search))
    search(key, inputs)      # compiles (or loads) on the first call for these shapes

The key must name everything the function reads besides its arguments, as it already must for
the in-process caches (CompiledModel.structure_key). To that the store adds what else could
change the program: the versions of jax, jaxlib and numpyro, a fingerprint of this package's
source, the backend and its device count, and whether x64 is on. A program that fails to load (a damaged or
foreign file) is compiled again and stored anew. Programs live in <cache>/programs
(datasets.cache_dir), at most MAX_BYTES of them; deleting the folder is always safe. A program that cannot be
serialised (one with a host callback, such as a progress bar inside it) runs, and is not kept.

Loading a fit's ten programs takes about a second of XLA work, most of it outside Python's
GIL. `LoadAhead` starts it on a background thread from the list of programs the last fit of
the same structure used (kept beside the programs), so that a new process loads its programs
while it imports the Python it needs next (arviz, scipy.stats):

    with LoadAhead(("fit",) + structure_key):   # reads the list, starts loading
        import arviz                             # meanwhile
        ...                                      # StoredProgram calls take loaded programs
                                                 # on exit: this fit's list is written

A first fit has nothing to load, and compiles. Its programs are independent of each other's
values, so a second thread can compile one while the first compiles another:
`compile_ahead(*args)` compiles the program for arguments like `args` (`jax.ShapeDtypeStruct`s
where the values are not known yet) and the call that needs it later takes it, or waits for it
if it is being compiled (the sampler's NUTS programs, sampler.py). Only tracing is serialised
(`tracing()`: numpyro's effect handlers live on one stack for the whole process); XLA compiles
outside Python's GIL.
"""
from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Callable, Hashable, TypeVar
from weakref import WeakSet

import jax

from ..datasets import cache_dir
from ..files import atomic_write

FORMAT = 1  # bump when what a stored file holds changes
MAX_BYTES = 2 * 1024 ** 3  # the folder's size limit: the least recently used programs go first

Kept = TypeVar("Kept")


class RecentPrograms:
    """The compiled programs of the `size` model structures used last in this process.

    Every compiled program holds memory maps of its code. Kept for the life of the process,
    a session that fits many structures (a backtest over laws, the law corpus) ran past the
    kernel's limit of 65,530 maps after about twenty fits and aborted inside XLA. When one
    structure is dropped, JAX's own caches are cleared as well, since they hold the same
    executables; programs still kept here are not touched (they are held directly), and a
    dropped one comes back from the disk store (StoredProgram) without compiling.

        samplers = RecentPrograms(8)
        sampler = samplers.get(structure_key, lambda: Sampler(...))
    """

    def __init__(self, size: int):
        self.size = size
        self._kept: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Kept]) -> Kept:
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        kept = self._kept[key] = build()
        if len(self._kept) > self.size:
            self._kept.popitem(last=False)
            jax.clear_caches()
        return kept

    def __len__(self) -> int:
        return len(self._kept)


class StoredProgram:
    def __init__(self, key: tuple, traced: Callable, *, devices: int = 1):
        """`traced`: a `jax.jit` or `jax.pmap` of the function; `key`: what it computes;
        `devices`: how many it runs on (a pmap's count; a program loaded back runs on the first
        `devices` local devices, as JAX placed it when it compiled)."""
        self.key, self.traced, self.devices = key, traced, devices
        # arguments' signature -> the program, made (or being made) by the first thread to want it
        self._programs: dict[str, Future] = {}
        self._files: dict[str, str] = {}  # arguments' signature -> its file's name in program_folder()
        self._lock = threading.Lock()
        _STORED_PROGRAMS.add(self)

    def __call__(self, *args):
        program, name = self._program(args, compile_only=False)
        if _loading_ahead is not None:
            _loading_ahead.used[name] = self.devices
        return program(*args)

    def compile_ahead(self, *args) -> bool:
        """Compile and store the program for arguments like `args` (arrays, or
        `jax.ShapeDtypeStruct`s where the values are not known yet), unless this process holds
        it, is making it, or it is on disk; False if so. Called on a background thread
        (sampler.py), so that the call that needs the program later finds it made: a call that
        comes first makes it itself, one that comes while this compiles waits for it."""
        program, _ = self._program(args, compile_only=True)
        return program is not None

    def available(self, *args) -> bool:
        """Whether the program for arguments like `args` is held by this process or stored."""
        signature = _full_signature(args)
        with self._lock:
            held = self._programs.get(signature)
            name = self._file_name(signature)
        return (held is not None and held.done() and held.exception() is None) or (program_folder() / name).is_file()

    def _program(self, args: tuple, compile_only: bool):
        """(the program for `args`, its file's name), made here if no thread has begun it; with
        `compile_only`, (None, name) where it is held, being made or stored."""
        signature = _full_signature(args)
        with self._lock:
            making = self._programs.get(signature)
            name = self._file_name(signature)
            if compile_only and (making is not None or (program_folder() / name).is_file()):
                return None, name  # nothing to compile: a call takes it, or loads it in far less time
            mine = making is None
            if mine:
                making = self._programs[signature] = Future()
                making.set_running_or_notify_cancel()
                self._files[signature] = name
        if mine:
            try:
                making.set_result(self._load_or_compile(name, args))
            except BaseException as error:
                with self._lock:  # the next call tries again, and raises for itself
                    del self._programs[signature], self._files[signature]
                making.set_exception(error)
                raise
        return making.result(), name

    def _file_name(self, signature: str) -> str:
        return self._files.get(signature) or f"{_digest(repr(self.key), signature, _environment())}.bin"

    def _load_or_compile(self, name: str, args: tuple) -> Callable:
        path = program_folder() / name
        loaded_ahead = _loading_ahead.take(name) if _loading_ahead is not None else None
        if loaded_ahead is not None or path.is_file():
            try:
                program = loaded_ahead.result() if loaded_ahead is not None else _load(path, self.devices)
            except Exception:  # damaged, cut short or from another build: compile it again
                _quietly(path.unlink, missing_ok=True)
            else:
                _quietly(path.touch)  # recently used: the last to go when the folder is trimmed
                return program
        if _loading_ahead is not None:
            _loading_ahead.compiling()
        with tracing():
            lowered = self.traced.lower(*args)
        with _outside_jax_cache():
            compiled = lowered.compile()
        try:
            blob = pickle.dumps(serialize(compiled))
        except Exception:  # not serialisable (a host callback, a closed-over constant): run it, keep nothing
            return compiled
        # a read-only or full disk costs the next process a compile, never this fit
        _quietly(atomic_write, path, lambda temp: Path(temp).write_bytes(blob))
        _quietly(_trim, path.parent, MAX_BYTES)
        return compiled


# numpyro's effect handlers live on one stack for the whole process, so two threads must not
# trace a model at once: every program is traced (lowered) under this lock. Compiling, most of
# the time, runs outside it and outside Python's GIL.
_TRACING = threading.RLock()


def tracing() -> threading.RLock:
    """The lock to hold while tracing a model's function (a background thread compiles ahead)."""
    return _TRACING


def _load(path: Path, devices: int) -> Callable:
    register_lapack()
    payload, in_tree, out_tree = pickle.loads(path.read_bytes())
    return deserialize_and_load(payload, in_tree, out_tree, jax.local_devices()[:devices])


_STORED_PROGRAMS: WeakSet[StoredProgram] = WeakSet()  # every one this process still holds
_loading_ahead: LoadAhead | None = None  # the one active in this process, if any
MAX_LIST_BYTES = 1024 ** 2  # lists of programs kept: one per fit structure, ~500 bytes each


class LoadAhead:
    """Load, on a background thread, the stored programs the last fit under `key` used, and
    on exit write the list of those this one used (see the module's docstring). Programs
    loaded ahead but not called are dropped on exit; programs this process holds already
    are not loaded again."""

    def __init__(self, key: tuple, on_compile: Callable[[], None] | None = None):
        """`on_compile`: called once, when the first program this fit needs has to be compiled
        (a fit that shows progress says why nothing moves for a while)."""
        self.on_compile = on_compile
        self.list_path = program_folder() / "lists" / f"{_digest(repr(key), _environment())}.txt"
        self.listed = _read_list(self.list_path)
        self.used: dict[str, int] = {}  # file name -> devices, of every program called inside
        self._loading: dict[str, Future] = {}

    def take(self, name: str) -> Future | None:
        return self._loading.pop(name, None)

    def compiling(self) -> None:
        announce, self.on_compile = self.on_compile, None  # once per fit, from whichever thread is first
        if announce is not None:
            announce()

    def __enter__(self) -> LoadAhead:
        global _loading_ahead
        held = {name for program in _STORED_PROGRAMS for name in program._files.values()}
        wanted = {name: devices for name, devices in self.listed.items()
                  if name not in held and (program_folder() / name).is_file()}
        if wanted:
            register_lapack()  # here: it lowers a JAX function, which the main thread should do
            loader = ThreadPoolExecutor(1, thread_name_prefix="load-ahead")
            self._loading = {name: loader.submit(_load, program_folder() / name, devices)
                             for name, devices in wanted.items()}
            loader.shutdown(wait=False)  # its thread ends when the last program is loaded
        _loading_ahead = self
        return self

    def __exit__(self, error_type, *_) -> None:
        global _loading_ahead
        _loading_ahead = None
        for future in self._loading.values():  # not called: this fit took another path
            future.cancel()
        wait(self._loading.values())  # no loading outlives the fit (a worker process may fork next)
        self._loading.clear()
        if error_type is None and self.used and list(self.used.items()) != list(self.listed.items()):
            # in the order they were first called: the next fit loads the first one needed first
            text = "".join(f"{name} {devices}\n" for name, devices in self.used.items())
            _quietly(atomic_write, self.list_path, lambda temp: Path(temp).write_text(text))
            _quietly(_trim, self.list_path.parent, MAX_LIST_BYTES, "*.txt")


def _read_list(path: Path) -> dict[str, int]:
    try:
        lines = path.read_text().split("\n")
        return {name: int(devices) for name, devices in (line.split() for line in lines if line)}
    except (OSError, ValueError):  # none yet, or damaged: load nothing ahead
        return {}


KEPT_PROGRAMS = 32  # jitted functions kept in the process by kept_jit


def kept_jit(key: tuple, function: Callable) -> Callable:
    """`jax.jit(function)`, the first one given under `key`: a second fit of the same structure
    then reuses its compiled program, in this process (among the KEPT_PROGRAMS used last) and,
    stored on disk, in the next."""
    return _kept_programs().get(key, lambda: StoredProgram(key, jax.jit(function)))


@cache
def _kept_programs() -> RecentPrograms:
    return RecentPrograms(KEPT_PROGRAMS)


_jax_cache_switch = threading.Lock()
_compiling_outside = 0  # compiles running now with JAX's cache switched off (threads compile side by side)
_jax_cache_was = False  # its setting before the first of them switched it off


@contextmanager
def _outside_jax_cache():
    """Compile for real, not read from JAX's own disk cache: an executable read from there
    serialises without its object code ("Function ... not found" when loaded back). JAX reads
    its switch once per process, hence the resets; the switch is the process's, so it stays
    off until the last of the compiles running side by side ends."""
    from jax.experimental.compilation_cache.compilation_cache import reset_cache

    global _compiling_outside, _jax_cache_was
    with _jax_cache_switch:
        if _compiling_outside == 0:
            _jax_cache_was = jax.config.jax_enable_compilation_cache
            jax.config.update("jax_enable_compilation_cache", False)
            reset_cache()
        _compiling_outside += 1
    try:
        yield
    finally:
        with _jax_cache_switch:
            _compiling_outside -= 1
            if _compiling_outside == 0:
                jax.config.update("jax_enable_compilation_cache", _jax_cache_was)
                reset_cache()


@cache
def register_lapack() -> None:
    """jaxlib registers its LAPACK kernels (eigh, cholesky, ...) when it first lowers one; a
    program loaded back that calls them in a process that lowered none would crash. Lowering
    one small decomposition (nothing compiles) registers them all."""
    import numpy as np

    jax.jit(jax.numpy.linalg.eigh).lower(np.eye(2))


def _quietly(action: Callable, *args, **kwargs) -> None:
    try:
        action(*args, **kwargs)
    except OSError:
        pass


def program_folder() -> Path:
    return cache_dir() / "programs"


def _trim(folder: Path, max_bytes: int, pattern: str = "*.bin") -> None:
    """Delete the least recently used files matching `pattern` (programs, or lists of them)
    until those left hold at most `max_bytes` (a Chinchilla fit stores ~12 MB of programs)."""
    files = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    total = 0
    for path in files:
        total += path.stat().st_size
        if total > max_bytes:
            path.unlink(missing_ok=True)


def serialize(compiled):
    from jax.experimental.serialize_executable import serialize as serialize_executable

    return serialize_executable(compiled)


def deserialize_and_load(payload, in_tree, out_tree, devices):
    from jax.experimental.serialize_executable import deserialize_and_load as load

    return load(payload, in_tree, out_tree, execution_devices=devices)


def _full_signature(args: tuple) -> str:
    """What a compiled program accepts, and whether 64-bit floats are on (inside fits only)."""
    return f"{_signature(args)}|{jax.dtypes.canonicalize_dtype(float)}"


def _signature(args: tuple) -> str:
    """The arguments' tree, shapes, dtypes and weak types: what a compiled program accepts."""
    leaves, tree = jax.tree.flatten(args)
    shapes = [(tuple(getattr(x, "shape", ())), str(getattr(x, "dtype", type(x).__name__)),
               getattr(x, "weak_type", not hasattr(x, "dtype"))) for x in leaves]  # a Python number is weak
    return f"{tree}|{shapes}"


@cache
def _environment() -> str:
    import jaxlib
    import numpyro

    backend = jax.default_backend()
    return repr((FORMAT, jax.__version__, jaxlib.__version__, numpyro.__version__, _source_fingerprint(),
                 backend, jax.local_device_count()))


@cache
def _source_fingerprint() -> str:
    """A hash of this package's Python source: a program traced by other code is not reused."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
