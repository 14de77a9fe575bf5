"""`infscale-dsl runs import`: runs written by the trackers' own libraries (TensorBoard event
files, an MLflow SQLite store, W&B offline runs) come back as a runs table that fits.

Every tracker gets the same sweep: 9 runs of a known Chinchilla law, each logging its
tokens seen and its loss at 4 checkpoints, and its size as a hyperparameter. No test touches
the network.
"""
import math
import sys

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.cli import main
from infscale_dsl.errors import LawError
from infscale_dsl.tables import read_table
from infscale_dsl.trackers import Columns, Skipped, read_mlflow, read_tensorboard, read_wandb

TRUTH = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 2000.0, "beta": 0.37}
CHECKPOINTS = (1, 2, 3, 4)  # steps; a run has seen D * step / 4 tokens at each
SWEEP = [(f"n{n:.0f}_d{d:.0f}", n, d) for n in (2e6, 8e6, 3.2e7) for d in (4e7, 1.6e8, 6.4e8)]
# tbparse 0.0.9 sorts in place, which pandas 3.1 deprecates
# torch (SummaryWriter) in the same process as JAX's fits has crashed the suite (pyproject's markers)
pytestmark = [pytest.mark.filterwarnings("ignore:The inplace keyword:Warning"), pytest.mark.torch]

COLUMNS = Columns(params={"n_params": "N"}, metrics={"tokens": "D", "val/loss": "loss"})


def law(n, d):
    return TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]


def curve(d):
    """(step, tokens seen) at each checkpoint of a run that ends at d tokens."""
    return [(step, d * step / len(CHECKPOINTS)) for step in CHECKPOINTS]


def expected_final():
    rows = [{"run_name": name, "N": n, "D": d, "loss": law(n, d)} for name, n, d in SWEEP]
    return pd.DataFrame(rows).sort_values("run_name", ignore_index=True)


def assert_final_table(table, rtol=1e-6):
    """The sweep's 9 runs, one row each, with the final tokens and loss (TensorBoard keeps float32)."""
    expected = expected_final()
    assert list(table.columns) == ["run", "run_name", "N", "D", "loss"]
    assert table["run_name"].tolist() == expected["run_name"].tolist()
    assert table["N"].dtype == "int64"
    for column in ("N", "D", "loss"):
        np.testing.assert_allclose(table[column], expected[column], rtol=rtol, err_msg=column)


def assert_fits(table):
    """A point fit of models/chinchilla.law to the imported table reproduces its losses."""
    from infscale_dsl.inference.fit import fit
    from infscale_dsl.language import load_spec

    spec = load_spec("models/chinchilla.law", columns=table.columns)
    result = fit(spec, table, method="map", n_starts=256)
    p = result.summary()["median"]
    fitted = p["E"] + p["A"] / table["N"] ** p["alpha"] + p["B"] / table["D"] ** p["beta"]
    np.testing.assert_allclose(fitted, table["loss"], rtol=5e-3)
    assert result.n_obs == {"loss": len(table)}


# --- TensorBoard -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tensorboard_logdir(tmp_path_factory):
    """The sweep as TensorBoard runs: most written by torch's SummaryWriter (hparams in the run's
    folder, or in the subfolder add_hparams makes by default), one by tensorboard's own writer
    in TF2's form (scalars stored as tensors), one that logs a step twice, and one run that
    logged no hparams."""
    pytest.importorskip("tbparse")
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2 as hparams_summary
    from tensorboard.plugins.scalar import summary_v2 as scalar_summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path_factory.mktemp("tensorboard")
    for i, (name, n, d) in enumerate(SWEEP):
        hparams = {"n_params": n, "optimizer": "adamw"}
        if i == 0:  # TF2's form, written without TensorFlow
            writer = EventFileWriter(str(logdir / name))
            for step, tokens in curve(d):
                for tag, value in (("tokens", tokens), ("val/loss", law(n, tokens))):
                    writer.add_event(event_pb2.Event(step=step, wall_time=float(step),
                                                     summary=scalar_summary.scalar_pb(tag, value)))
            writer.add_event(event_pb2.Event(summary=hparams_summary.hparams_pb(hparams)))
            writer.close()
            continue
        with SummaryWriter(str(logdir / name)) as writer:
            if i == 2:  # a run resumed from a checkpoint logs its last step again: the later value counts
                writer.add_scalar("val/loss", 99.0, CHECKPOINTS[-1])
            for step, tokens in curve(d):
                writer.add_scalar("tokens", tokens, step)
                writer.add_scalar("val/loss", law(n, tokens), step)
            writer.add_hparams(hparams, {}, run_name=None if i == 1 else ".")  # None: a timestamped subfolder
    with SummaryWriter(str(logdir / "no_hparams")) as writer:
        writer.add_scalar("val/loss", 3.0, 1)
    return logdir


def test_tensorboard_runs_import_and_fit(tensorboard_logdir):
    imported = read_tensorboard(tensorboard_logdir, COLUMNS)
    assert_final_table(imported.table)
    assert imported.skipped == [Skipped("no_hparams", "no_hparams", ("no param 'n_params'", "no metric 'tokens'"))]
    assert_fits(imported.table)


def test_tensorboard_history_is_one_row_per_checkpoint(tensorboard_logdir):
    table = read_tensorboard(tensorboard_logdir, COLUMNS, history=True).table
    assert list(table.columns) == ["run", "run_name", "step", "N", "D", "loss"]
    assert len(table) == len(SWEEP) * len(CHECKPOINTS)
    for name, n, d in SWEEP:
        rows = table[table["run"] == name]
        assert rows["step"].tolist() == list(CHECKPOINTS)
        tokens = [tokens for _, tokens in curve(d)]
        np.testing.assert_allclose(rows["D"], tokens, rtol=1e-6)
        np.testing.assert_allclose(rows["loss"], [law(n, t) for t in tokens], rtol=1e-6)


def test_tensorboard_params_from_run_names_and_categories(tensorboard_logdir):
    columns = Columns(params={"N": "N"}, categories={"optimizer": "optimizer"}, metrics={"val/loss": "loss"})
    table = read_tensorboard(tensorboard_logdir, columns, name_pattern=r"^n(?P<N>\d+)_").table
    assert table["N"].tolist() == expected_final()["N"].astype(int).tolist()
    assert set(table["optimizer"]) == {"adamw"}


def test_an_unknown_name_lists_the_logged_ones(tensorboard_logdir):
    columns = Columns(params={"n_param": "N"}, metrics={"val_loss": "loss"})
    with pytest.raises(LawError) as raised:
        read_tensorboard(tensorboard_logdir, columns)
    param, metric = raised.value.diagnostics
    assert param.message == "no run logs a param named 'n_param'"
    assert param.hint == "did you mean 'n_params'? the params logged are: n_params, optimizer"
    assert metric.message == "no run logs a metric named 'val_loss'"
    assert metric.hint.startswith("did you mean 'val/loss'? the metrics logged are: ")
    assert "tokens" in metric.hint


# --- MLflow ------------------------------------------------------------------------------------


def log_mlflow_sweep(mlflow):
    """The sweep in experiment "sweep", plus three runs to leave out and one in "other"."""
    mlflow.set_experiment("sweep")
    for name, n, d in SWEEP:
        with mlflow.start_run(run_name=name):
            mlflow.log_params({"n_params": int(n), "optimizer": "adamw"})
            for step, tokens in curve(d):
                mlflow.log_metrics({"tokens": tokens, "val/loss": law(n, tokens)}, step=step)
    with mlflow.start_run(run_name="crashed"):
        mlflow.log_param("n_params", 1000)
        mlflow.log_metrics({"tokens": 1e6, "val/loss": 5.0}, step=1)
        mlflow.end_run(status="FAILED")
    with mlflow.start_run(run_name="no_size"):
        mlflow.log_param("n_params", "unknown")
        mlflow.log_metrics({"tokens": 1e6, "val/loss": 5.0}, step=1)
    with mlflow.start_run(run_name="diverged"):
        mlflow.log_param("n_params", 1000)
        mlflow.log_metrics({"tokens": 1e6, "val/loss": math.nan}, step=1)
    mlflow.set_experiment("other")
    with mlflow.start_run(run_name="elsewhere"):
        mlflow.log_param("n_params", 5e6)
        mlflow.log_metrics({"tokens": 2e8, "val/loss": law(5e6, 2e8)}, step=4)


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        log_mlflow_sweep(mlflow)
    finally:
        mlflow.set_tracking_uri(previous)
    return uri


def test_mlflow_runs_import_and_fit(mlflow_store):
    imported = read_mlflow(mlflow_store, COLUMNS, experiments=("sweep",))
    assert_final_table(imported.table, rtol=1e-12)
    reasons = {skip.name: skip.reasons for skip in imported.skipped}
    assert reasons == {
        "crashed": ("did not finish (FAILED; --include-unfinished keeps it)",),
        "no_size": ("param 'n_params' is 'unknown', not a number",),
        "diverged": ("metric 'val/loss' is nan, not a finite number",),
    }
    assert_fits(imported.table)


def test_mlflow_history_and_experiments(mlflow_store):
    table = read_mlflow(mlflow_store, COLUMNS, experiments=("sweep",), history=True).table
    assert len(table) == len(SWEEP) * len(CHECKPOINTS)
    name, n, d = SWEEP[4]
    rows = table[table["run_name"] == name]
    assert rows["step"].tolist() == list(CHECKPOINTS)
    np.testing.assert_allclose(rows["loss"], [law(n, tokens) for _, tokens in curve(d)], rtol=1e-12)

    everything = read_mlflow(mlflow_store, COLUMNS, include_unfinished=True).table  # every experiment
    assert len(everything) == len(SWEEP) + 2  # "elsewhere" and "crashed" too
    with pytest.raises(LawError, match="did you mean 'sweep'"):
        read_mlflow(mlflow_store, COLUMNS, experiments=("swep",))


def test_mlflow_file_store(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads and writes file stores on request only
    uri = (tmp_path / "mlruns").as_uri()
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment("small")  # the fluent API's active experiment is global: set ours
        with mlflow.start_run(run_name="small"):
            mlflow.log_param("n_params", 1000)
            mlflow.log_metric("val/loss", 4.0, step=1)
            mlflow.log_metric("val/loss", 3.5, step=2)
    finally:
        mlflow.set_tracking_uri(None)
    table = read_mlflow(uri, Columns(params={"n_params": "N"}, metrics={"val/loss": "loss"})).table
    assert table[["run_name", "N", "loss"]].to_dict("records") == [{"run_name": "small", "N": 1000, "loss": 3.5}]


def test_a_missing_store_is_not_created(tmp_path):
    pytest.importorskip("mlflow")
    with pytest.raises(LawError, match="no MLflow store here"):
        read_mlflow(f"sqlite:///{tmp_path / 'typo.db'}", COLUMNS)
    assert not (tmp_path / "typo.db").exists()


# --- Weights & Biases --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def wandb_folder(tmp_path_factory, monkeypatch_module):
    """Three of the sweep's runs, and one that failed, logged by wandb in offline mode."""
    wandb = pytest.importorskip("wandb")
    folder = tmp_path_factory.mktemp("wandb")
    monkeypatch_module.setenv("WANDB_MODE", "offline")
    monkeypatch_module.setenv("WANDB_SILENT", "true")
    for setting in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):  # wandb's logs and settings, not the user's
        monkeypatch_module.setenv(setting, str(tmp_path_factory.mktemp(setting.lower())))
    for name, n, d in SWEEP[:3]:
        with wandb.init(dir=folder, project="sweep", name=name, config={"model": {"n_params": n}}) as run:
            for step, tokens in curve(d):
                run.log({"tokens": tokens, "val/loss": law(n, tokens)}, step=step)
    run = wandb.init(dir=folder, project="sweep", name="failed", config={"model": {"n_params": 1000}})
    run.log({"tokens": 1e6, "val/loss": 5.0}, step=1)
    run.finish(exit_code=1)
    return folder / "wandb"


WANDB_COLUMNS = Columns(params={"model.n_params": "N"}, metrics={"tokens": "D", "val/loss": "loss"})


def test_wandb_offline_runs_import(wandb_folder):
    imported = read_wandb(wandb_folder, WANDB_COLUMNS)
    expected = expected_final().set_index("run_name").loc[[name for name, _, _ in SWEEP[:3]]]
    assert sorted(imported.table["run_name"]) == sorted(expected.index)
    table = imported.table.set_index("run_name").loc[expected.index]
    for column in ("N", "D", "loss"):
        np.testing.assert_allclose(table[column], expected[column], rtol=1e-12)
    assert [(skip.name, skip.reasons) for skip in imported.skipped] == [
        ("failed", ("did not finish (failed; --include-unfinished keeps it)",))]

    history = read_wandb(wandb_folder, WANDB_COLUMNS, history=True).table
    assert len(history) == 3 * len(CHECKPOINTS)
    assert history.groupby("run_name")["step"].apply(list).tolist() == [list(CHECKPOINTS)] * 3


def wandb_exports(folder):
    """The sweep as W&B exports it: the runs table (Name, State, config and summary columns) as
    CSV, and the runs' histories (run.history() rows, the run's name and config added) as JSON Lines."""
    runs = [{"Name": name, "State": "finished", "n_params": n, "tokens": d, "val/loss": law(n, d)}
            for name, n, d in SWEEP]
    runs.append({"Name": "still running", "State": "running", "n_params": 1e6, "tokens": 1e6, "val/loss": 9.0})
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)
    history = [{"_step": step, "_runtime": 0.1 * step, "tokens": tokens, "val/loss": law(n, tokens),
                "run": name, "n_params": n}
               for name, n, d in SWEEP for step, tokens in curve(d)]
    pd.DataFrame(history).to_json(folder / "history.jsonl", orient="records", lines=True)
    return folder / "runs.csv", folder / "history.jsonl"


def test_wandb_exports_import_and_fit(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # an export needs no wandb package
    runs_csv, history_jsonl = wandb_exports(tmp_path)
    imported = read_wandb(runs_csv, COLUMNS)
    assert_final_table(imported.table)
    assert [skip.name for skip in imported.skipped] == ["still running"]
    assert_fits(imported.table)

    from_history = read_wandb(history_jsonl, COLUMNS, run_column="run")
    pd.testing.assert_frame_equal(from_history.table, imported.table)
    assert len(read_wandb(history_jsonl, COLUMNS, run_column="run", history=True).table) == 36
    with pytest.raises(LawError, match="needs a history export"):
        read_wandb(runs_csv, COLUMNS, history=True)
    with pytest.raises(LawError, match="no column 'Name' to name the runs") as raised:
        read_wandb(history_jsonl, COLUMNS)
    assert "_runtime, _step, n_params, run, tokens, val/loss; choose one with --run-column" in str(raised.value)


# --- what every reader shares ------------------------------------------------------------------


@pytest.mark.parametrize("module, extra, read, source", [
    ("tbparse", "tensorboard", read_tensorboard, "logs"),
    ("mlflow", "mlflow", read_mlflow, "sqlite:///mlflow.db"),
    ("wandb", "wandb", read_wandb, "wandb"),
])
def test_a_missing_library_names_its_extra(monkeypatch, module, extra, read, source):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(LawError) as raised:
        read(source, COLUMNS)
    assert raised.value.diagnostics[0].hint == f"pip install 'infscale-dsl[{extra}]'"
    assert repr(module) in raised.value.diagnostics[0].message


@pytest.mark.parametrize("columns, message", [
    (dict(metrics={}), "no metric to import"),
    (dict(params={"n_params": "N", "size": "N"}, metrics={"val/loss": "loss"}), "2 names map to the column 'N'"),
    (dict(metrics={"val/loss": "step"}), "the column 'step' is the importer's own"),
])
def test_columns_refuse_what_cannot_be_a_table(columns, message):
    with pytest.raises(LawError, match=message):
        Columns(**columns)


def test_cli_writes_the_table_and_reports_skipped_runs(tensorboard_logdir, tmp_path, capsys):
    options = ["--param", "n_params=N", "--metric", "tokens=D", "--metric", "val/loss=loss"]
    out = tmp_path / "runs.parquet"
    assert main(["runs", "import", "tensorboard", str(tensorboard_logdir), *options, "-o", str(out)]) == 0
    assert_final_table(read_table(out))
    assert "no_hparams: no param 'n_params'; no metric 'tokens'" in capsys.readouterr().out

    assert main(["runs", "import", "tensorboard", str(tensorboard_logdir), *options, "-o", "-"]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines()[0] == "run,run_name,N,D,loss"
    assert len(printed.out.splitlines()) == 1 + len(SWEEP)
    assert "skipped 1:" in printed.err

    assert main(["runs", "import", "tensorboard", str(tensorboard_logdir), "--metric", "val/los", "-o", "-"]) == 2
    assert "did you mean 'val/loss'?" in capsys.readouterr().err
    assert main(["runs", "import", "tensorboard", str(tensorboard_logdir), "--metric", "tokens=D",
                 "--metric", "val/loss=D", "-o", "-"]) == 2
    assert main(["runs", "import", "tensorboard", str(tensorboard_logdir), "--metric", "val/loss",
                 "-o", str(tmp_path / "runs.txt")]) == 2
