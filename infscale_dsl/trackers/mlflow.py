"""An MLflow tracking store, read with MLflow's own client (the [mlflow] extra).

The source is a tracking URI: a SQLite database (`sqlite:///mlflow.db`), a file store
(`file:///path/mlruns`; MLflow 3 reads one only with MLFLOW_ALLOW_FILE_STORE=true) or a
tracking server (`http://host:5000`, the same code). MLflow logs params as text; numbers among
them are read as numbers. A metric's final value is MLflow's latest (the value at its largest
step); with `history` its whole history is read, for the metrics asked for only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse
from urllib.request import url2pathname

from ..errors import DataError, Diagnostic, require_extra
from .table import Columns, Imported, TrackedRun, by_step, names_hint, runs_table

PAGE = 1000  # runs per search request


def read_mlflow(tracking_uri: str, columns: Columns, *, experiments: tuple[str, ...] = (),
                filter_string: str = "", history: bool = False, name_pattern: str | None = None,
                include_unfinished: bool = False) -> Imported:
    """The runs of `experiments` (names; default every active experiment) that match
    `filter_string` (MLflow's search syntax, e.g. "params.optimizer = 'adam'")."""
    mlflow = require_extra("mlflow", "mlflow", "reading an MLflow store")
    _check_local_store(tracking_uri)
    try:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)  # opens the store: may refuse it
        experiment_ids = _experiment_ids(client, experiments, tracking_uri)
        runs = [_tracked(client, run, columns.metrics if history else ())
                for run in _search(client, experiment_ids, filter_string)]
    except mlflow.exceptions.MlflowException as error:
        raise DataError(Diagnostic(f"MLflow cannot read the store: {error.message}", filename=tracking_uri,
                                   hint="check the tracking URI and --filter")) from None
    if not runs:
        raise DataError(Diagnostic("no runs found", filename=tracking_uri,
                                   hint="check --experiment and --filter, or give another tracking URI"))
    return runs_table(runs, columns, tracking_uri, history=history, name_pattern=name_pattern,
                      include_unfinished=include_unfinished)


def _check_local_store(tracking_uri: str) -> None:
    """A local store must exist: MLflow would create an empty one and find no runs in it."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        path = Path(tracking_uri.removeprefix("sqlite:///"))  # four slashes: an absolute path
    elif parsed.scheme in ("file", ""):
        path = Path(url2pathname(parsed.path))
    else:
        return  # a server or a remote database
    if not path.exists():
        raise DataError(Diagnostic("no MLflow store here", filename=tracking_uri,
                                   hint="give an existing store, e.g. sqlite:///mlflow.db or file:///path/to/mlruns"))


def _experiment_ids(client, names: tuple[str, ...], tracking_uri: str) -> list[str]:
    every = list(_pages(client.search_experiments))
    if not names:
        return [experiment.experiment_id for experiment in every]
    by_name = {experiment.name: experiment.experiment_id for experiment in every}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise DataError([Diagnostic(f"no experiment named {name!r}", filename=tracking_uri,
                                    hint=names_hint(name, by_name, "the store's experiments"))
                         for name in unknown])
    return [by_name[name] for name in names]


def _search(client, experiment_ids: list[str], filter_string: str):
    return _pages(lambda **page: client.search_runs(experiment_ids, filter_string, **page))


def _pages(search):
    """Every item of a paged MLflow search."""
    token = None
    while True:
        page = search(max_results=PAGE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _tracked(client, run, history_of: Iterable[str]) -> TrackedRun:
    """An MLflow run; the metrics in `history_of` with their whole history, the others with
    their latest value only (at a step 0 of no meaning: the final table has no step)."""
    info, data = run.info, run.data
    metrics = {name: by_step([0], [value]) for name, value in data.metrics.items()}
    for name in history_of:
        if name in data.metrics:
            logged = sorted(client.get_metric_history(info.run_id, name), key=lambda point: (point.step, point.timestamp))
            metrics[name] = by_step([point.step for point in logged], [point.value for point in logged])
    return TrackedRun(id=info.run_id, name=info.run_name or info.run_id, params=dict(data.params),
                      metrics=metrics, unfinished=None if info.status == "FINISHED" else info.status)
