"""A fit's draws and what it was fitted on: result.py holds FitResult (summary, arviz, saving),
folder.py reads and writes the fit folder (`fit -o fit/`), and compare.py ranks fits of one
table by PSIS-LOO (`compare`; the weights of a stacked `predict`)."""
from .result import FitResult

__all__ = ["FitResult"]
