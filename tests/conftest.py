"""Shared test set-up. JAX reads XLA_FLAGS once, at start-up: two host devices let NUTS run two
chains in parallel and let the data-parallel training test shard over devices."""
import os
import tempfile
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
# fits keep compiled programs under this cache; tests use a fresh one, not the user's
os.environ.setdefault("INFSCALE_DSL_CACHE", tempfile.mkdtemp(prefix="infscale-dsl-tests-"))

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, the public reference data; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (it lies beside the checkout)")
    return SHARED_DATA
