"""A fit's draws and what it was fitted on: result.py holds FitResult (summary, arviz, saving)
and folder.py reads and writes the fit folder (`fit -o fit/`)."""
from .result import FitResult

__all__ = ["FitResult"]
