"""What a user installs: the console script, the grammar inside the wheel, and the training
and latency code importable on a machine without the fitting stack (a GPU box)."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_training_and_latency_import_without_lark_or_arviz():
    # a None entry in sys.modules makes `import lark` fail, as on a machine without it
    code = ("import sys\n"
            "for name in ('lark', 'arviz', 'numpyro'):\n"
            "    sys.modules[name] = None\n"
            "import infscale_dsl.nn.model, infscale_dsl.nn.train, infscale_dsl.nn.sweep\n"
            "import infscale_dsl.latency.bench, infscale_dsl.latency.jax_backend\n"
            "import runpy\n"
            "from infscale_dsl.cli import main\n"
            "for call in (lambda: main(['sweep', '--help']),  # and the GPU checks' scripts\n"
            "             lambda: runpy.run_path('benchmarks/gpu_sweep.py', run_name='__main__'),\n"
            "             lambda: runpy.run_path('benchmarks/gpu_latency.py', run_name='__main__')):\n"
            "    sys.argv = ['script', '--help']\n"
            "    try:\n"
            "        call()\n"
            "    except SystemExit as done:\n"
            "        assert done.code == 0\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_console_script_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "infscale_dsl", "--help"], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout
    for command in ("check", "show", "fit", "predict", "sweep", "latency", "report",
                    "recommend", "compare", "backtest", "runs"):
        assert command in out


@pytest.mark.slow
def test_wheel_ships_the_grammar_and_the_ready_specs(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True)
    wheel = next(tmp_path.glob("infscale_dsl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "infscale_dsl/grammars/law.lark" in names
    assert "infscale_dsl/language/parse.py" in names
    # simulate.PUBLISHED draws tables from these specs
    assert {f"infscale_dsl/models/{p.name}" for p in (ROOT / "models").glob("*.law")} <= set(names)


def test_api_names_stay_functions_after_their_submodules_load():
    import infscale_dsl as isd
    import infscale_dsl.inference.fit  # noqa: F401  (sets the package attribute `fit` to the submodule)
    import infscale_dsl.prediction.predict  # noqa: F401

    for _ in range(2):  # a notebook's second call
        assert callable(isd.fit) and isd.fit.__name__ == "fit"
        assert callable(isd.predict) and isd.predict.__name__ == "predict"
    assert isd.FitResult.__name__ == "FitResult"
