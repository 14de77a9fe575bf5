"""infscale-dsl: scaling laws as small text files, fitted with Bayesian inference."""
__version__ = "0.1.0"
