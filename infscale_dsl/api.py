"""A law as an object, in the shape bambi's `Model` and brms's `brm` give:

    import infscale_dsl as isd
    law = isd.Law.from_file("models/chinchilla.law")   # or isd.Law("loss ~ A/N^a + B/D^b + E")
    law.show()                                          # roles, priors, sampling parametrisation
    fit = law.fit(table)                                # NUTS; method="map" for a point fit
    fit.summary()                                       # one row per parameter
    fit.predict(new_table)                              # {response}_median, _q05, _q95, _law_median
    fit.to_arviz()                                      # the InferenceData, for arviz's plots
    fit.save("fit/")                                    # the fit folder `infscale-dsl fit` writes

`fit` returns the FitResult the function API (`isd.fit`) returns. NUTS chains run in parallel
when JAX has a CPU device per chain. JAX reads that count once, when it starts, so `Law.fit`
asks for it (`parallel_chains`) if JAX has not started yet; a program that used JAX before
its first fit sets it itself, before importing jax:

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python train_and_fit.py
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from .language import check, load_spec, parse
from .language.evaluate import unparse


class Law:
    """A checked .law spec, ready to fit to a table. `text` is the spec itself; names not
    declared with `data` resolve against the table's columns when it is fitted."""

    def __init__(self, text: str, filename: str = "<string>"):
        self.spec = check(parse(text, filename))  # syntax and semantic errors now, not at fit time

    @classmethod
    def from_file(cls, path: str | Path) -> "Law":
        spec = load_spec(Path(path))
        return cls(spec.source, spec.filename)

    def __repr__(self) -> str:
        laws = "; ".join(f"{law.response} ~ {unparse(law.expr)}" for law in self.spec.laws)
        return f"Law({self.spec.filename}: {laws})"

    def show(self, table=None) -> None:
        """Print what `infscale-dsl show` prints: roles, the priors used and how each parameter
        is sampled; with a table (a DataFrame or a path), the priors' scales from its data."""
        from .model.compile import compile_spec
        from .model.data import prepare

        if table is None:
            print(compile_spec(self.spec, None).describe())
            return
        table = _table(table)
        spec = self._checked(table)
        print(compile_spec(spec, prepare(spec, table)).describe())

    def fit(self, table, *, method: str = "nuts", chains: int = 4, **options):
        """Fit to `table` (a DataFrame, or the path of a .csv or .parquet file) and return the
        FitResult. `options` are those of `isd.fit`: warmup, draws, max_draws, seed,
        target_accept, mass, progress, loss, delta."""
        if not parallel_chains(chains) and method == "nuts":
            import jax

            warnings.warn(
                f"the {chains} NUTS chains will run vectorised on one device, not in parallel: JAX "
                f"started before this fit with {jax.local_device_count()} device(s). Set "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={chains} before importing jax",
                stacklevel=2)
        from .inference.fit import fit

        filename = str(table) if isinstance(table, (str, Path)) else None  # data errors name the file
        table = _table(table)
        return fit(self._checked(table), table, method=method, chains=chains, filename=filename, **options)

    def _checked(self, table):
        """The spec checked against the table's columns (undeclared names that are columns are data)."""
        return check(parse(self.spec.source, self.spec.filename), table.columns)


def parallel_chains(chains: int) -> bool:
    """Whether NUTS can run `chains` chains in parallel, asking JAX for one CPU device per
    chain (as the CLI does) if it has not started yet."""
    if not _jax_started():
        import numpyro

        numpyro.set_host_device_count(max(chains, os.cpu_count() or 1))
        return True
    import jax

    return jax.local_device_count() >= chains


FIT_DEVICES = ("cpu", "gpu")


def fit_device(device: str) -> None:
    """Run this process's fits on `device`, as the CLI's `--device` does; call it before JAX
    starts. "cpu" keeps JAX off any GPU (JAX_PLATFORMS=cpu): a scaling-law table is tens to
    thousands of rows, NUTS's tree building waits on the device at every step, and on a GPU
    JAX would also take 75 % of its memory from a training job running there. "gpu" leaves
    JAX its default and requires a GPU; the chains then run vectorised on it."""
    from .errors import ConfigError, Diagnostic

    if device not in FIT_DEVICES:
        raise ConfigError(Diagnostic(f"unknown device {device!r}", hint=f"use one of: {', '.join(FIT_DEVICES)}"))
    if device == "cpu":
        if not _jax_started():
            os.environ["JAX_PLATFORMS"] = "cpu"  # for this process and the workers it starts
            if "jax" in sys.modules:  # imported, so it read the variable already
                sys.modules["jax"].config.update("jax_platforms", "cpu")
        return
    import jax

    try:
        backend = jax.default_backend()
    except (RuntimeError, AssertionError) as error:  # JAX_PLATFORMS names no backend this machine has
        backend, why = "cpu", f" ({str(error) or 'no backend that JAX_PLATFORMS names is here'})"
    else:
        why = ""
    if backend == "cpu":
        raise ConfigError(Diagnostic(f"--device gpu, but JAX sees no GPU here{why}",
                                     hint='install JAX with GPU support (pip install -U "jax[cuda12]"), '
                                          "unset JAX_PLATFORMS, or fit with --device cpu"))


def _jax_started() -> bool:
    """Whether JAX has created its backends, and so read the device count from XLA_FLAGS."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):  # a JAX without this private helper: assume it started
        return True


def _table(table):
    """A DataFrame as given, or read from a path."""
    from .tables import read_table

    return read_table(table) if isinstance(table, (str, Path)) else table
