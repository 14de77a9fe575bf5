"""Bad input on the command line, as a hostile new user gives it (issue 11): every case exits 2
with its diagnostic, no traceback, and writes nothing. Run in-process through `main`; no case
gets as far as compiling a model."""
import os
import shlex
import shutil
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infscale_dsl import files
from infscale_dsl.cli import main
from test_fit_folder import SPEC, cut_short, drop_key, hand_made_fit

FIT, PREDICT = "fit {w}/spec.law {w}/runs.csv --method map --quiet", "predict {w}/fit {w}/cand.csv"


@pytest.fixture(scope="module")
def fit_folder(tmp_path_factory):
    return hand_made_fit().save(tmp_path_factory.mktemp("fit") / "fit")


@pytest.fixture
def workspace(tmp_path, fit_folder):
    """Tables, a spec, a fit folder and the awkward places a user can point -o at."""
    rng = np.random.default_rng(0)
    runs = pd.DataFrame({"N": np.geomspace(1e7, 1e9, 12), "D": np.geomspace(1e9, 1e11, 12),
                         "loss": 3 + rng.uniform(0, 0.1, 12)})
    (tmp_path / "spec.law").write_text(SPEC)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    runs.iloc[:0].to_csv(tmp_path / "empty.csv", index=False)
    runs.assign(loss=np.nan).to_csv(tmp_path / "noloss.csv", index=False)
    runs.drop(columns="loss").to_csv(tmp_path / "cand.csv", index=False)
    (tmp_path / "dup.csv").write_text("N,D,loss,loss\n1e7,1e9,3.1,2.9\n1e8,1e10,3.0,2.8\n")
    pq.write_table(pa.table([[1e7], [1e9], [3.1], [2.9]], names=["N", "D", "loss", "loss"]), tmp_path / "dup.parquet")
    shutil.copytree(fit_folder, tmp_path / "fit")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not a fit")
    (tmp_path / "locked").mkdir(mode=0o500)
    yield tmp_path
    (tmp_path / "locked").chmod(0o700)


def other_fit_summary(w):
    other = hand_made_fit(2.0).save(w / "other")
    shutil.copy(other / "summary.json", w / "fit" / "summary.json")
    shutil.rmtree(other)


# (item of issue 11, command line, damage done first, expected text in stderr)
CASES = {
    # 4: no usable rows is a data error, not an all-NaN fit
    "header-only table": (4, FIT.replace("runs.csv", "empty.csv") + " -o {w}/out", None,
                          "empty.csv: error: the table has no rows: no values of 'loss' to fit"),
    "response missing on every row": (4, FIT.replace("runs.csv", "noloss.csv") + " -o {w}/out", None,
                                      "noloss.csv: error: response column 'loss' is missing on every row"),
    "--where matching nothing": (4, FIT + " -o {w}/out --where 'N < 0'", None,
                                 "runs.csv: error: --where 'N < 0' matches none of the table's 12 rows"),
    "no candidates to predict": (4, "predict {w}/fit {w}/empty.csv -o {w}/p.csv", None,
                                 "empty.csv: error: the table has no rows: nothing to predict"),
    # 5: outputs are checked before the work
    "fit -o an existing file": (5, FIT + " -o {w}/runs.csv", None, "this is an existing file"),
    "fit -o under a file": (5, FIT + " -o {w}/runs.csv/fit", None, "runs.csv is a file, not a folder"),
    "fit -o a folder of other files": (5, FIT + " -o {w}/mine", None, "already holds other files (notes.txt)"),
    "fit -o where writing is not allowed": (5, FIT + " -o {w}/locked/fit", None, "no permission to write in"),
    "predict -o under a file": (5, PREDICT + " -o {w}/runs.csv/p.csv", None, "is a file, not a folder"),
    "predict -o a folder": (5, PREDICT + " -o {w}/mine", None, "the predictions table must end in .csv"),
    "predict -o a folder named .csv": (5, PREDICT + " -o {w}/mine.csv", lambda w: (w / "mine.csv").mkdir(),
                                       "the predictions table is a folder, not a file"),
    "report -o under a file": (5, "report {w}/fit -o {w}/runs.csv/r.html", None, "is a file, not a folder"),
    "recommend -o .pdf": (5, "recommend {w}/fit --flops 1e21 -o {w}/r.pdf", None,
                          "the report must end in .html, .md or .json"),
    "compare -o .txt": (5, "compare {w}/spec.law {w}/spec.law {w}/runs.csv -o {w}/c.txt", None,
                        "the comparison table must end in .csv"),
    "backtest -o under a file": (5, "backtest {w}/spec.law {w}/runs.csv --holdout 'N > 1e8' -o {w}/runs.csv/b.csv",
                                 None, "is a file, not a folder"),
    "latency -o under a file": (5, "latency {w}/shapes.toml -o {w}/runs.csv/l.csv", None, "is a file, not a folder"),
    # 7: damaged fit folders name the file and say what to do
    "posterior.nc cut short": (7, PREDICT + " -o {w}/p.csv", lambda w: cut_short(w / "fit/posterior.nc"),
                               "posterior.nc cannot be read"),
    "fit.json cut short": (7, PREDICT + " -o {w}/p.csv", lambda w: cut_short(w / "fit/fit.json"),
                           "fit.json is not valid JSON"),
    "fit.json without a key": (7, PREDICT + " -o {w}/p.csv", lambda w: drop_key(w / "fit/fit.json", "columns"),
                               "fit.json has no entry 'columns'"),
    "spec.law missing": (7, "report {w}/fit -o {w}/r.html", lambda w: (w / "fit/spec.law").unlink(),
                         "spec.law is missing"),
    "a folder mixing two fits": (7, PREDICT + " -o {w}/p.csv", other_fit_summary,
                                 "mixes two fits: summary.json did not come from the fit in fit.json"),
    "merging a 0-byte runs table": (7, "sweep --merge {w}/zero.parquet -o {w}/all.parquet",
                                    lambda w: (w / "zero.parquet").write_bytes(b""), "cannot read zero.parquet"),
    "timing shapes of a 0-byte runs table": (7, "latency {w}/zero.parquet -o {w}/l.csv",
                                             lambda w: (w / "zero.parquet").write_bytes(b""),
                                             "zero.parquet: error: cannot read the runs table"),
    # 8: smaller ones
    "a ;-separated CSV": (8, "check {w}/spec.law {w}/semi.csv", lambda w: (w / "semi.csv").write_text("N;D;loss\n1;2;3\n"),
                          "semi.csv: error: the header reads as one column, 'N;D;loss': the file separates its "
                          "columns with ';'"),
    "Parquet named .csv": (8, "check {w}/spec.law {w}/pq.csv",
                           lambda w: pd.read_csv(w / "runs.csv").to_parquet(w / "pq.csv"),
                           "pq.csv: error: this file is Parquet, not CSV\n    hint: rename it to pq.parquet"),
    "duplicated CSV columns": (8, "check {w}/spec.law {w}/dup.csv", None,
                               "dup.csv: error: column 'loss' appears 2 times in the header"),
    "duplicated Parquet columns": (8, "check {w}/spec.law {w}/dup.parquet", None, "column 'loss' appears 2 times"),
    "recommend a misspelt target, no candidates": (8, "recommend {w}/fit --flops 1e21 --target 'los <= 1.5'", None,
                                                   "nothing gives 'los': it is not a fitted response"),
    "report, candidate names repeated": (8, "report {w}/fit --candidates {w}/same.csv -o {w}/r.json",
                                         lambda w: (w / "same.csv").write_text("name,N,D\na,1e8,2e9\na,2e8,4e9\n"),
                                         "candidate names repeat: a"),
    "report, shapes the latency table lacks": (
        8, "report {w}/fit --candidates {w}/shapes.csv --latency {w}/lat.csv -o {w}/r.json",
        lambda w: ((w / "shapes.csv").write_text("N,D,d_model,n_layers\n1e8,2e9,512,8\n2e8,4e9,1024,8\n"),
                   (w / "lat.csv").write_text("d_model,n_layers,tpot_ms\n512,8,3.0\n")),
        "1 candidate(s) have no row in the latency table: 1024x8"),
    "report, a latency table with two rows a shape": (
        8, "report {w}/fit --candidates {w}/shapes.csv --latency {w}/lat.csv -o {w}/r.json",
        lambda w: ((w / "shapes.csv").write_text("N,D,d_model,n_layers\n1e8,2e9,512,8\n"),
                   (w / "lat.csv").write_text("d_model,n_layers,batch,tpot_ms\n512,8,1,3.0\n512,8,4,3.5\n")),
        "the latency table has several rows for a shape (by d_model, n_layers)"),
    "report, --mfu-from a CPU sweep": (8, "report {w}/fit --mfu-from {w}/cpu.csv --gpu-hour-price 1 -o {w}/r.json",
                                       lambda w: (w / "cpu.csv").write_text("run,mfu\nx,\ny,\n"),
                                       "cpu.csv's mfu column holds no measured value"),
    "recommend --flops nan": (8, "recommend {w}/fit --flops nan", None, "argument --flops: must be a finite number"),
    "recommend --flops inf": (8, "recommend {w}/fit --flops inf", None, "argument --flops: must be a finite number"),
    "recommend --flops 0": (8, "recommend {w}/fit --flops 0", None, "argument --flops: must be > 0, not 0"),
    "recommend --flops -1": (8, "recommend {w}/fit --flops -1", None, "argument --flops: must be > 0, not -1"),
    "fit --chains 0": (8, FIT + " -o {w}/out --chains 0", None, "argument --chains: must be at least 1, not 0"),
    "fit --draws 0": (8, FIT + " -o {w}/out --draws 0", None, "argument --draws: must be at least 1, not 0"),
    "fit --warmup 0": (8, FIT + " -o {w}/out --warmup 0", None, "argument --warmup: must be at least 1, not 0"),
    "fit --seed -1": (8, FIT + " -o {w}/out --seed -1", None, "argument --seed: must be at least 0, not -1"),
    "predict --seed -1": (8, PREDICT + " -o {w}/p.csv --seed -1", None, "argument --seed: must be at least 0"),
    "fit -o -": (5, FIT + " -o -", None, "a fit folder cannot go to standard output (-o -)"),
    "sweep --gpus-per-run -1": (8, "sweep {w}/sweep.toml -o {w}/runs.csv --gpus-per-run -1", None,
                                "argument --gpus-per-run: must be >= 0, not -1"),
    "compare --method map": (8, "compare {w}/spec.law {w}/spec.law {w}/runs.csv --method map", None,
                             "compare ranks fits by PSIS-LOO, which needs a posterior"),
    "compare with a bad second spec": (8, "compare {w}/spec.law {w}/typo.law {w}/runs.csv",
                                       lambda w: (w / "typo.law").write_text("loss ~ A/N^^a + E\n"),
                                       "typo.law:1:"),  # refused before the first spec's fit
    "sweep -o runs.txt": (8, "sweep {w}/sweep.toml -o {w}/runs.txt", None,
                          "runs.txt: error: the runs table must end in .parquet or .csv"),
}


def snapshot(folder):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("item, command, damage, expected", CASES.values(), ids=CASES.keys())
def test_bad_input_exits_2_with_its_diagnostic_and_writes_nothing(workspace, capsys, monkeypatch, item, command,
                                                                 damage, expected):
    if "locked" in command and os.geteuid() == 0:  # root may write anywhere: ask as a user would be answered
        monkeypatch.setattr(files.os, "access", lambda path, mode: not str(path).endswith("locked"))
    if damage:
        damage(workspace)
    before = snapshot(workspace)
    started = time.perf_counter()
    try:
        code = main(shlex.split(command.format(w=workspace)))
    except SystemExit as exit:  # argparse refuses a bad option value
        code = exit.code
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err, err
    assert snapshot(workspace) == before
    if item == 5:
        assert elapsed < 1.0, f"an unwritable output took {elapsed:.1f} s to refuse"


def test_compare_names_specs_by_file_stem_and_by_path_where_stems_repeat():
    from infscale_dsl.cli.report import spec_names

    assert spec_names(["models/a.law", "b.law"]) == ["a", "b"]
    assert spec_names(["d1/chinchilla.law", "d2/chinchilla.law", "x.law"]) == ["d1/chinchilla.law",
                                                                            "d2/chinchilla.law", "x"]


def test_report_prints_no_probability_line_when_nothing_was_asked(workspace, capsys):
    command = f"report {workspace}/fit --candidates {workspace}/cand.csv -o {workspace}/r.json"
    assert main(shlex.split(command)) == 0
    assert "P(all met)" not in capsys.readouterr().out  # was "NOT RELIABLE" for every candidate, even of a good fit
    assert main(shlex.split(command + " --target 'loss <= 3'")) == 0
    assert "P(all met) NOT RELIABLE" in capsys.readouterr().out  # a point fit withholds it
