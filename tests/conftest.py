"""Shared test set-up. JAX reads XLA_FLAGS once, at start-up: two host devices let NUTS run two
chains in parallel and let the data-parallel training test shard over devices."""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
# fits keep compiled programs under this cache (~10 MB a model structure); tests use a fresh
# one, not the user's, shared by pytest-xdist's workers and removed when the run ends
if "INFSCALE_DSL_CACHE" not in os.environ:
    os.environ["INFSCALE_DSL_CACHE"] = tempfile.mkdtemp(prefix="infscale-dsl-tests-")
    atexit.register(shutil.rmtree, os.environ["INFSCALE_DSL_CACHE"], ignore_errors=True)

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, the public reference data; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (it lies beside the checkout)")
    return SHARED_DATA
