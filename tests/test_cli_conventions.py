"""The conventions a command-line user expects of every command: --version, exit codes in
--help, `-` for standard input and output, -q/--quiet, each option's default in its help, and
--strict exiting 1. Fits here are point fits (--method map) of a small synthetic table."""
import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infscale_dsl import __version__
from infscale_dsl.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SPEC = str(ROOT / "models/chinchilla.law")
CANDIDATES = "name,N,D,latency_ms\nsmall,2e8,4e9,6.0\nlarge,1e9,2e10,25.0\n"


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e7), np.log(5e8), 30))
    d = np.exp(rng.uniform(np.log(1e8), np.log(1e10), 30))
    loss = (1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28) * np.exp(0.01 * rng.standard_normal(30))
    pd.DataFrame({"N": n, "D": d, "loss": loss}).to_csv(folder / "runs.csv", index=False)
    return folder / "runs.csv"


@pytest.fixture(scope="module")
def point_fit(runs_csv) -> Path:
    """A point fit made from a table piped in: `fit SPEC - -o FOLDER`."""
    folder = runs_csv.parent / "fit"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO(runs_csv.read_text()))
        assert main(["fit", SPEC, "-", "-o", str(folder), "--method", "map", "-q"]) == 0
    return folder


def subcommands(parser: argparse.ArgumentParser | None = None, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every command a user can run, by its words: "fit", "runs import wandb", ..."""
    parser = parser or build_parser()
    nested = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if nested is None:
        return {prefix.strip(): parser}
    return {name: leaf for word, child in nested.choices.items()
            for name, leaf in subcommands(child, f"{prefix} {word}").items()}


COMMAND_WORDS = sorted(subcommands())


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"infscale-dsl {__version__}"


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "0  success" in out and "1  a check you asked for failed" in out and "2  bad input" in out


def test_every_command_is_tested():
    assert {words.split()[0] for words in COMMAND_WORDS} == set(COMMANDS)


@pytest.mark.parametrize("command", COMMAND_WORDS)
def test_every_command_takes_quiet(command):
    options = {o for action in subcommands()[command]._actions for o in action.option_strings}
    assert {"-q", "--quiet"} <= options


@pytest.mark.parametrize("command", COMMAND_WORDS)
def test_every_option_says_its_default(command):
    parser = subcommands()[command]
    for action in parser._actions:
        flag = isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction))
        if not action.option_strings or flag or action.required:
            continue
        shown = parser._get_formatter()._expand_help(action)  # the text `--help` prints for it
        assert "default" in shown, f"{command} {action.option_strings[-1]}: {shown!r}"


def test_fit_help_shows_the_values(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 4)" in out and "(default: auto)" in out and "(default: 0.99)" in out


def test_check_reads_standard_input_and_quiet_prints_nothing(runs_csv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(runs_csv.read_text()))
    assert main(["check", SPEC, "-"]) == 0
    assert "ok:" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO(runs_csv.read_text()))
    assert main(["check", SPEC, "-", "-q"]) == 0
    assert capsys.readouterr().out == ""


def test_standard_input_may_be_parquet_and_binary_junk_is_bad_input(runs_csv, tmp_path, monkeypatch, capsys):
    pd.read_csv(runs_csv).to_parquet(tmp_path / "runs.parquet")
    # a real stdin has bytes under .buffer: Parquet is told from CSV by its first four bytes
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((tmp_path / "runs.parquet").read_bytes())))
    assert main(["check", SPEC, "-"]) == 0
    assert "ok:" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe\x00junk")))
    assert main(["check", SPEC, "-"]) == 2
    assert "<stdin>: error: standard input is not UTF-8 text" in capsys.readouterr().err


def test_an_empty_standard_input_is_bad_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["check", SPEC, "-"]) == 2
    assert "<stdin>" in capsys.readouterr().err


def test_predict_from_standard_input_to_standard_output(point_fit, monkeypatch, capsys):
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO(CANDIDATES))
    assert main(["predict", str(point_fit), "-", "-o", "-"]) == 0
    out, err = capsys.readouterr()
    predicted = pd.read_csv(io.StringIO(out))  # nothing but the table on standard output
    assert list(predicted["name"]) == ["small", "large"]
    assert {"loss_median", "loss_q05", "loss_q95", "loss_law_median"} <= set(predicted.columns)
    assert "point fit" in err


def test_quiet_fit_drops_the_written_line(point_fit, runs_csv, tmp_path, capsys):
    assert main(["fit", SPEC, str(runs_csv), "-o", str(tmp_path / "f"), "--method", "map", "-q"]) == 0
    out = capsys.readouterr().out
    assert "robust objective" in out and "written:" not in out


def test_report_to_standard_output_and_strict(point_fit, tmp_path, monkeypatch, capsys):
    (tmp_path / "cand.csv").write_text(CANDIDATES)
    argv = ["report", str(point_fit), "--candidates", str(tmp_path / "cand.csv"), "--target", "loss <= 3",
            "--budget", "latency_ms <= 20", "-o", "-"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)  # the JSON contract, alone on standard output
    assert report["units"] == {"latency_ms": "ms"}
    assert "NOT RELIABLE" in err  # the terminal summary went to standard error
    # a point fit has no posterior, so it never passes the gate: --strict exits 1
    assert main(argv + ["--strict"]) == 1


def test_report_latency_unit_option(point_fit, tmp_path, capsys):
    (tmp_path / "cand.csv").write_text(CANDIDATES.replace("latency_ms", "latency"))
    argv = ["report", str(point_fit), "--candidates", str(tmp_path / "cand.csv"), "--budget", "latency <= 20",
            "--latency-unit", "ms", "--loss-unit", "nats/token", "--gpu-hour-price", "2", "--currency", "EUR",
            "--requests-per-year", "1e6", "-o", str(tmp_path / "r.md")]
    assert main(argv) == 0
    text = (tmp_path / "r.md").read_text()
    assert "latency (ms), measured" in text and "loss (nats/token): law" in text
    assert "training cost (EUR)" in text and "latency per token (latency) in ms" in text


def test_report_output_extension_is_checked_before_any_work(tmp_path, capsys):
    assert main(["report", str(tmp_path / "no-fit"), "-o", str(tmp_path / "r.txt")]) == 2
    assert "name the output .html, .md or .json" in capsys.readouterr().err


def test_standard_input_holds_one_table(point_fit, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(CANDIDATES))
    assert main(["report", str(point_fit), "--candidates", "-", "--latency", "-", "-o", "-"]) == 2
    assert "standard input" in capsys.readouterr().err


def test_max_draws_below_draws_is_bad_input(runs_csv, tmp_path, capsys):
    assert main(["fit", SPEC, str(runs_csv), "-o", str(tmp_path / "f"), "--draws", "200", "--max-draws", "100"]) == 2
    assert "give --max-draws at least --draws" in capsys.readouterr().err


def run_cli(*argv: str) -> list[str]:
    """The heavy libraries a command loads, run as a user runs it (a fresh interpreter)."""
    code = ("import json, sys\n"
            "from infscale_dsl.cli import main\n"
            "try:\n"
            f"    main({list(argv)!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(json.dumps(sorted(m for m in ('jax', 'numpyro', 'arviz', 'pandas', 'numpy') if m in sys.modules)), "
            "file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(ROOT)})
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_help_loads_nothing_heavy_and_check_no_fitting_stack():
    assert run_cli("--help") == []
    assert run_cli("latency", "--help") == []
    assert run_cli("check", SPEC, "examples/data/cpu_small_runs.parquet") == ["numpy", "pandas"]


def test_predict_reads_a_fit_folder_without_arviz_or_jax(point_fit, tmp_path):
    """`predict` reads the posterior group alone, with xarray: importing arviz would cost 1.4 s
    of the 2 s target (issue 12)."""
    candidates = tmp_path / "candidates.csv"
    candidates.write_text(CANDIDATES)
    loaded = run_cli("predict", str(point_fit), str(candidates), "-o", str(tmp_path / "p.csv"), "-q")
    assert loaded == ["numpy", "pandas"]
    assert len(pd.read_csv(tmp_path / "p.csv")) == 2


def test_show_without_a_table_reads_the_spec_without_the_fitting_stack():
    """`show spec.law` prints the priors from the spec alone: importing jax, numpyro, pandas
    or scipy would cost seconds (issue 12: under a second)."""
    code = ("import sys\nfrom infscale_dsl.cli import main\n"
            "assert main(['show', 'models/chinchilla.law', '-q']) == 0\n"
            "print(sorted(m for m in ('jax', 'numpyro', 'pandas', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_fits_keep_jax_on_the_cpu_unless_told_otherwise(runs_csv, tmp_path):
    """A fit sets JAX_PLATFORMS=cpu before JAX starts, so on a GPU machine it neither waits on
    the GPU at every NUTS step nor takes its memory from a training job there; worker processes
    inherit the setting."""
    code = ("import json, os, sys\n"
            "from infscale_dsl.cli import main\n"
            f"code = main(['fit', {SPEC!r}, {str(runs_csv)!r}, '-o', {str(tmp_path / 'f')!r}, '--method', 'map', '-q'])\n"
            "import jax\n"
            "print(json.dumps([code, os.environ['JAX_PLATFORMS'], jax.config.jax_platforms, jax.default_backend()]))\n")
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, "cpu", "cpu", "cpu"]
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert summary["sampler"]["device"] == "cpu"


@pytest.mark.skipif(__import__("jax").default_backend() != "cpu", reason="this machine has a GPU")
def test_device_gpu_without_a_gpu_is_bad_input(runs_csv, tmp_path, capsys):
    assert main(["fit", SPEC, str(runs_csv), "-o", str(tmp_path / "f"), "--device", "gpu"]) == 2
    error = capsys.readouterr().err
    assert "--device gpu, but JAX sees no GPU here" in error and "--device cpu" in error
    assert not (tmp_path / "f").exists()
