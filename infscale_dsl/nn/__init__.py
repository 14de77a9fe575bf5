"""Training data for scaling laws: a Flax transformer (model.py), byte-level corpora (corpus.py),
data-parallel training (train.py), sweeps of runs (sweep.py) and the runs table (runs.py).

Nothing here imports the law language or the fitting code, so it runs on a GPU machine that has
only JAX, Flax, optax, pandas/pyarrow and tqdm.
"""
