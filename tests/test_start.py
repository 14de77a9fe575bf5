"""Fits start where the law is finite, every time (issue 17), and say so when it never is.

The seed paper's main fit, written with the aspect ratio inline, has a free factor
(1 + eps * (d_model / n_layers)^a): at a random point eps < 0 makes the law negative and its log
NaN. numpyro's default initialisation traced the model at such a point and raised.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from infscale_dsl.errors import LawError
from infscale_dsl.inference.fit import fit
from infscale_dsl.language import load_spec

INLINE_SEED_LAW = "loss ~ (E + A/N^a + B/D^a) * (1 + eps * (d_model / n_layers)^a)\n"

# fits this table at several seeds in a fresh process (XLA reads its flags at start-up) and
# prints, per seed, whether the sampler started and produced finite draws
FIT_SEEDS = textwrap.dedent("""
    import json, sys
    import numpy as np, pandas as pd
    from infscale_dsl.inference.fit import fit
    from infscale_dsl.language import load_spec
    table = pd.read_csv(sys.argv[1])
    spec = load_spec(sys.argv[2], columns=table.columns)
    started = {}
    for seed in range(2):
        result = fit(spec, table, seed=seed, chains=2, warmup=30, draws=20, mass="laplace")
        started[seed] = bool(np.isfinite(result.draws["E"]).all())
    print(json.dumps(started))
""")


@pytest.fixture(scope="module")
def main27(shared_data, tmp_path_factory):
    """The 27 runs of the seed paper's main fit, with the columns the inline law reads."""
    table = pd.read_csv(shared_data / "bian2025_models.csv")
    table = table[table["in_fit_set_main"] == 1].rename(columns={"params_N": "N", "tokens_D": "D"})
    folder = tmp_path_factory.mktemp("main27")
    table[["N", "D", "d_model", "n_layers", "loss"]].to_csv(folder / "main27.csv", index=False)
    (folder / "spec.law").write_text(INLINE_SEED_LAW)
    return folder


@pytest.mark.slow
def test_the_seed_main_fit_starts_at_every_seed(main27):
    table = pd.read_csv(main27 / "main27.csv")
    spec = load_spec(main27 / "spec.law", columns=table.columns)
    for seed in range(3):
        result = fit(spec, table, seed=seed, chains=2, warmup=30, draws=20, mass="laplace")
        assert np.isfinite(result.draws["E"]).all(), seed


@pytest.mark.slow
def test_the_seed_main_fit_starts_with_one_xla_thread(main27):
    """XLA's reductions on one thread take another numerical path than on several."""
    flags = "--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false"
    run = subprocess.run([sys.executable, "-c", FIT_SEEDS, str(main27 / "main27.csv"), str(main27 / "spec.law")],
                         capture_output=True, text=True, env=dict(os.environ, XLA_FLAGS=flags), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"0": True, "1": True}


def test_a_law_never_finite_gives_a_located_diagnostic():
    # negative for every row and every parameter value, so its log is never finite
    spec = load_spec("data loss : positive\ndata N : positive\nloss ~ E - exp(b) - N\n", columns=["N", "loss"])
    table = pd.DataFrame({"N": [1e6, 1e7, 1e8, 1e9], "loss": [4.0, 3.5, 3.1, 2.9]})
    with pytest.raises(LawError) as error:
        fit(spec, table, chains=1, warmup=10, draws=10, n_starts=64)
    (diagnostic,) = error.value.diagnostics
    assert "not finite" in diagnostic.message and "'loss'" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (3, 1)
    assert "priors or bounds" in diagnostic.hint
