"""Codecs: learned transforms and encodings, pure functions of arrays.

Each codec has `fit(sample)`, `encode(x)` and `to_arrays()/from_arrays()` so its
parameters live beside the index as plain `.npy` files.
"""
