"""From a checked spec and a table to a NumPyro model.

data.py checks the table's rows against the spec and prepares arrays per law; roles.py finds
each law's offsets and power terms; priors.py picks every parameter's prior; likelihood.py is the
noise model; curves.py the per-run offsets of learning curves; compile.py puts them together
into the model NumPyro samples.
"""
