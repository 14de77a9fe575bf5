"""The `infscale-dsl` command. Each sub-command lives in its own module with two functions:
`register(subparsers)` adds its parser (with `func=run` as default), `run(args) -> int`.

Modules import only argparse at the top and the rest inside `run`, so that `--help` is quick
and `sweep` and `latency` work on a machine without the fitting stack (lark, numpyro, arviz).

Exit codes (EXIT_CODES, printed by `infscale-dsl --help`): 0 success, 1 a check the user asked
for failed (`--strict` with a fit that fails its gate, `backtest --min-coverage`, a failed
sweep run), 2 bad input (a spec, table or option error, printed as diagnostics).
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings

from .. import __version__
from ..errors import InfscaleError
from ..files import mark_interrupted, was_interrupted
from .arguments import RawDescriptionHelpFormatter

# sub-command name -> module under infscale_dsl.cli
COMMANDS = {
    "check": "language",
    "show": "fit",
    "fit": "fit",
    "predict": "fit",
    "sweep": "sweep",
    "latency": "latency",
    "report": "report",
    "recommend": "report",
    "compare": "report",
    "backtest": "report",
    "runs": "runs",
}

EXIT_CODES = """\
exit codes:
  0  success
  1  a check you asked for failed: --strict (fit, compare, report, recommend) and the fit
     fails its diagnostics gate; backtest --min-coverage not met; a sweep run failed
  2  bad input: a spec, table or option error (printed as file:line:col diagnostics)

conventions: a table argument given as - is read from standard input (CSV, or Parquet); -o - writes the
table (CSV) or report (JSON) to standard output, and messages go to standard error;
-q/--quiet drops progress bars and status lines, never results, warnings or errors."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infscale-dsl",
        description="Scaling laws as .law files: check, fit, predict, sweep, time and report.",
        epilog=EXIT_CODES, formatter_class=RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(f"{__name__}.{module_name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # arviz 0.23 announces its coming 1.0 refactor on import; users of the CLI cannot act on it
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    args = build_parser().parse_args(argv)
    handles_signals = threading.current_thread() is threading.main_thread()  # signal.signal's rule
    previous = signal.signal(signal.SIGINT, _on_interrupt) if handles_signals else None
    try:
        code = int(args.func(args) or 0)
        if not was_interrupted():
            return code
    except InfscaleError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        mark_interrupted(False)  # the record is this command's: a later call in this process starts clean
        if handles_signals:
            signal.signal(signal.SIGINT, previous)
    print("interrupted", file=sys.stderr)
    return 130


def _on_interrupt(signum, frame) -> None:
    """Ctrl-C: recorded (see files.mark_interrupted: the exception alone can be swallowed), then raised."""
    mark_interrupted()
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
