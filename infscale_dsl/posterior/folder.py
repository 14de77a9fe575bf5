"""The fit folder on disk: written whole, read back with every kind of damage named.

    posterior.nc   arviz InferenceData (NetCDF): posterior, log_likelihood, sample_stats; a NUTS
                   fit also observed_data, posterior_predictive, prior, prior_predictive and
                   unconstrained_posterior (posterior.complete_inference_data). Folders written
                   before those groups came, with the sampling sites in the posterior, load too
    summary.json   the figures benchmarks and tests read (see `FitResult.summary_json`)
    spec.law       a copy of the spec as fitted
    fit.json       what predict needs besides the draws: levels, observed ranges, data hash

The four files are written into a sibling temporary folder that is then swapped in
(`files.replace_folder`), so an interrupted save leaves the old fit or the new one. Each file
carries the fit's id (posterior.nc in its attributes, the JSON files as a key, spec.law through
its SHA-256 in fit.json): a folder mixing two fits, copied together by hand or left by an older
version, is refused on load rather than predicting from draws of one fit and levels of another.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict
from pathlib import Path

from ..errors import DataError, Diagnostic
from ..files import check_output_folder, recover_folder, replace_folder
from ..language.ast import Noise
from ..model.likelihood import with_noise

FILES = ("posterior.nc", "summary.json", "spec.law", "fit.json")
REFIT = "refit it: infscale-dsl fit SPEC TABLE -o {folder}"


def check_output(folder: str | Path) -> Path:
    """ConfigError now, before a fit runs, if `folder` cannot take a fit (see check_output_folder)."""
    return check_output_folder(folder, FILES)


def write(result, folder: str | Path) -> Path:
    """Save a FitResult as a fit folder, replacing an earlier fit there whole."""
    import arviz as az  # here, not at the top: `fit -o` checks its folder before the fitting stack loads

    folder = check_output(folder)
    fit_id = uuid.uuid4().hex
    source = result.spec.source
    meta = {"fit_id": fit_id, "spec_sha256": _sha256(source), "method": result.method,
            "spec_filename": result.spec.filename, "levels": {k: list(v) for k, v in result.levels.items()},
            "data_ranges": {k: list(v) for k, v in result.data_ranges.items()},
            "n_obs": result.n_obs, "left_out": result.left_out, "data_sha256": result.data_sha256,
            "columns": list(result.columns), "objective": result.objective, "priors": result.priors,
            "sampler": result.sampler, "checks": result.checks, "support": result.support,
            "noise": {law.response: asdict(law.noise) for law in result.spec.laws}}
    groups = {group: getattr(result.idata, group) for group in result.idata.groups()}
    groups["posterior"] = groups["posterior"].assign_attrs(fit_id=fit_id)  # a copy: result stays as it was

    def write_files(temp: Path) -> None:
        az.InferenceData(**groups).to_netcdf(str(temp / "posterior.nc"))
        (temp / "spec.law").write_text(source)
        (temp / "summary.json").write_text(json.dumps(result.summary_json() | {"fit_id": fit_id}, indent=2))
        (temp / "fit.json").write_text(json.dumps(meta, indent=2))

    return replace_folder(folder, write_files)


def read(folder: str | Path) -> dict:
    """The keyword arguments of FitResult for the fit in `folder`; DataError naming the file and
    what to do if the folder is not a fit folder, is damaged or mixes two fits."""
    from ..language import check, parse

    folder = recover_folder(Path(folder))
    if not (folder / "fit.json").is_file():
        what = "there is no such folder" if not folder.exists() else "this is not a fit folder (no fit.json in it)"
        raise DataError(Diagnostic(what, filename=str(folder),
                                   hint="pass the folder written by `infscale-dsl fit SPEC TABLE -o FOLDER`"))
    meta, summary = _json(folder, "fit.json"), _json(folder, "summary.json")
    source = _file(folder, "spec.law", Path.read_text)
    idata = _file(folder, "posterior.nc", StoredInferenceData)
    fit_id = meta.get("fit_id")
    if fit_id is None:
        raise _damaged(folder, "fit.json", "has no fit id (written by an older infscale-dsl?)")
    strangers = [name for name, same in (("posterior.nc", idata.posterior.attrs.get("fit_id") == fit_id),
                                         ("summary.json", summary.get("fit_id") == fit_id),
                                         ("spec.law", _sha256(source) == meta.get("spec_sha256")))
                 if not same]
    if strangers:
        raise DataError(Diagnostic(
            f"the folder mixes two fits: {', '.join(strangers)} did not come from the fit in fit.json",
            filename=str(folder), hint="files were copied in from another fit or edited; "
                                       + REFIT.format(folder=folder)))
    try:
        kwargs = dict(method=meta["method"], idata=idata,
                      levels={k: tuple(v) for k, v in meta["levels"].items()},
                      data_ranges={k: tuple(v) for k, v in meta["data_ranges"].items()},
                      n_obs=dict(meta["n_obs"]), left_out=dict(meta["left_out"]), data_sha256=meta["data_sha256"],
                      columns=tuple(meta["columns"]), objective=meta["objective"],
                      priors=dict(meta["priors"]), sampler=dict(meta["sampler"]),
                      checks=dict(meta["checks"]), support=dict(meta["support"]))
        spec_filename = meta["spec_filename"]
    except KeyError as error:
        raise _damaged(folder, "fit.json", f"has no entry {error}") from None
    except (TypeError, ValueError, AttributeError):
        raise _damaged(folder, "fit.json", "holds entries of the wrong kind (edited by hand?)") from None
    spec = check(parse(source, spec_filename), kwargs["columns"])
    try:  # the noise as fitted: an undeclared one depends on the table (folders before it: Normal)
        spec = with_noise(spec, {r: Noise(**n) for r, n in meta.get("noise", {}).items()})
    except TypeError:
        raise _damaged(folder, "fit.json", "holds a noise entry of the wrong kind (edited by hand?)") from None
    missing = [name for name in spec.parameters if name not in idata.posterior]
    if missing:
        raise _damaged(folder, "posterior.nc", f"has no draws of {', '.join(missing)}")
    return kwargs | {"spec": spec}


def _json(folder: Path, name: str) -> dict:
    text = _file(folder, name, Path.read_text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _damaged(folder, name, f"is not valid JSON ({error.msg} at line {error.lineno}; cut short?)") from None
    if not isinstance(value, dict):
        raise _damaged(folder, name, "does not hold a JSON object")
    return value


def _file(folder: Path, name: str, read):
    path = folder / name
    if not path.is_file():
        raise _damaged(folder, name, "is missing")
    try:
        return read(path)
    except UnicodeDecodeError:
        raise _damaged(folder, name, "is not text") from None
    except Exception as error:  # h5py, netCDF4 and xarray raise many types for a cut-short file
        raise _damaged(folder, name, f"cannot be read ({type(error).__name__}: {error})") from None


class StoredInferenceData:
    """posterior.nc, each group read when first asked for, as arviz's InferenceData offers them
    (`.posterior`, `.groups()`). `predict` needs the posterior alone, which xarray reads in 0.1 s;
    importing arviz takes 1.4 s of a 2-core machine. `to_inference_data()` reads every group
    into arviz's own object."""

    def __init__(self, path: Path):
        import h5netcdf  # arviz writes posterior.nc with it (one netCDF group per InferenceData group)

        self.path = path
        with h5netcdf.File(path, "r") as file:
            self._names = list(file.groups)
        self._read: dict = {}
        if "posterior" not in self._names:
            raise ValueError("no posterior group in it")
        self.posterior  # read the draws now: a file cut short fails here, not later in predict

    def groups(self) -> list[str]:
        return list(self._names)

    def __getattr__(self, group: str):
        if group.startswith("_") or group not in self._names:
            raise AttributeError(group)
        if group not in self._read:
            import xarray as xr

            with xr.open_dataset(self.path, group=group, engine="h5netcdf") as dataset:
                self._read[group] = dataset.load()
        return self._read[group]

    def to_inference_data(self):
        import arviz as az

        return az.InferenceData(**{group: getattr(self, group) for group in self._names})


def _damaged(folder: Path, name: str, what: str) -> DataError:
    return DataError(Diagnostic(f"damaged fit folder: {name} {what}", filename=str(folder / name),
                                hint=REFIT.format(folder=folder)))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
