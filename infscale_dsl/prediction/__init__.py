"""From posterior draws to predictions: predict.py gives the law's and a new run's draws for
new rows; simulate.py draws synthetic tables from a spec and known parameters."""
