"""From a NumPyro model to posterior draws.

pointfit.py finds the posterior mode (the start, and `--method map`); sampler.py runs NUTS from
there; checks.py is the diagnostics gate (convergence and misfit); fit.py runs the whole path and
returns a FitResult.
"""
