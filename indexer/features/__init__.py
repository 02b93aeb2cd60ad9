"""Readable, steerable sparse features: each unit of a collection's sparse autoencoder named
by its top documents, used to explain hits and to steer queries.

- table.py: the per-unit table (top rows, activations, frequency, label terms), its files,
  and the codes of every row rebuilt from a version's postings.
- labels.py: c-TF-IDF labels of each unit from its top-activating documents (pure compute).
- explain.py: the features a query and a hit share, by contribution.
- steering.py: moving a query along units' decoder directions; label queries -> units.
- serve.py: the above wired to a version: written at build, opened on first use, applied
  in search (`steer`, `explain_features`) and browsed (`Collection.features`).

Tested in tests/indexer/features (pure parts) and tests/test_features.py (end to end);
measured in bench/features_report.py.
"""
