"""When to draw progress bars, one rule for fits, sweeps and latency runs: only for a person
watching. Standard library only, so nn/ and latency/ use it on a machine without the fitting stack."""
from __future__ import annotations

import os
import sys


def show_progress(quiet: bool = False) -> bool:
    """Not with --quiet, not under CI (the CI variable set), not into a pipe or a file."""
    return not quiet and not os.environ.get("CI") and sys.stderr.isatty()
