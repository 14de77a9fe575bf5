"""infscale-dsl: scaling laws as small text files, fitted with Bayesian inference.

A law as an object (api.py), as bambi and brms users know it:

    import infscale_dsl as isd
    law = isd.Law.from_file("models/bian2025.law")   # or isd.Law("loss ~ A/N^a + B/D^b + E")
    fit = law.fit(table)                          # NUTS, chains in parallel; method="map" for a point fit
    fit.summary(); fit.predict(candidates); fit.to_arviz(); fit.save("fit/")

The function API mirrors the CLI:

    table = isd.read_table("runs.parquet")
    spec = isd.load_spec("models/bian2025.law", columns=table.columns)
    result = isd.fit(spec, table)                 # the same FitResult
    result.summary()                              # a DataFrame, one row per parameter
    result.save("fit/")                           # isd.FitResult.load("fit/") reads it back
    isd.predict(result, candidates)               # {response}_median, _q05, _q95, _law_median
    frame, weights = isd.predict_stacked({"a": fit_a, "b": fit_b}, candidates)  # laws stacked by LOO

Names load lazily, so `infscale_dsl.nn` and `infscale_dsl.latency` import without the fitting
stack (lark, numpyro, arviz), as on a GPU machine that only trains or times models.
"""
import sys
import types
from importlib import import_module

__version__ = "0.1.0"

_API = {
    "parse": "language", "check": "language", "load_spec": "language",
    "read_table": "tables", "write_table": "tables", "prepare": "model.data",
    "fit": "inference.fit", "FitResult": "posterior.result",
    "predict": "prediction.predict", "predict_draws": "prediction.predict",
    "predict_stacked": "prediction.predict",
    "InfscaleError": "errors", "SpecError": "errors", "DataError": "errors", "ConfigError": "errors",
    "LawError": "errors", "Diagnostic": "errors",
    "Law": "api",
}
__all__ = sorted(_API)


class _Package(types.ModuleType):
    """API names resolve to the function on every access. A plain module `__getattr__` runs
    only while the name is missing, and a submodule named like an API function (once
    `infscale_dsl/fit.py`) would set the package's attribute to the module on import."""

    def __getattribute__(self, name: str):
        if name in _API:
            return getattr(import_module(f".{_API[name]}", __name__), name)
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _Package
