"""Why a hit matched, in features: the units active in both the query and the hit.

With non-negative codes, unit u adds query[u] * hit[u] to the code inner product, so the
shared units ranked by that product are what the query and the hit have in common, in
the order they count. Pure compute over sparse codes; labels come from the feature table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vecdial.indexer.features.table import FeatureTable


@dataclass(frozen=True)
class SharedFeature:
    """One feature active in both a query and a hit: contribution = query activation x hit activation."""

    unit: int
    label: str
    contribution: float

    def to_dict(self) -> dict:
        return {"feature": self.unit, "label": self.label, "contribution": round(self.contribution, 6)}


def query_code(units: np.ndarray, weights: np.ndarray, n_units: int) -> sp.csr_matrix:
    """One query's top-k code (units (a,), weights (a,), as ``encode_topk`` gives a row)
    -> CSR (1, n_units) float32."""
    units, weights = np.asarray(units).ravel(), np.asarray(weights, dtype=np.float32).ravel()
    keep = weights > 0
    code = sp.csr_matrix((weights[keep], (np.zeros(int(keep.sum()), dtype=np.int64), units[keep].astype(np.int64))), shape=(1, n_units))
    code.sum_duplicates()
    return code


def shared_features(
    query_code: sp.spmatrix | np.ndarray, hit_codes: sp.spmatrix | np.ndarray, table: FeatureTable, top: int = 5
) -> list[list[SharedFeature]]:
    """Per hit, its `top` features shared with the query, largest contribution first.

    query_code: (units,) dense or (1, units) sparse activations of the query.
    hit_codes: (h, units) sparse or dense activations of the hits, e.g.
    ``hit_codes_from_postings`` for a version's rows. Only units active (> 0) in both
    are listed; ties go to the lower unit. Returns h lists of at most `top` features.
    """
    query = sp.csr_matrix(np.asarray(query_code, dtype=np.float32).reshape(1, -1) if not sp.issparse(query_code) else query_code)
    hits = sp.csr_matrix(hit_codes, dtype=np.float32)
    if query.shape[1] != hits.shape[1] or query.shape[1] != table.units:
        raise ValueError(f"codes have {query.shape[1]} and {hits.shape[1]} units, the table {table.units}")
    query.data = np.maximum(query.data, 0)
    hits.data = np.maximum(hits.data, 0)
    both = sp.csr_matrix(hits.multiply(query))  # (h, units): non-zero only where both are active
    both.eliminate_zeros()
    out = []
    for i in range(both.shape[0]):
        start, stop = both.indptr[i], both.indptr[i + 1]
        units, values = both.indices[start:stop], both.data[start:stop]
        order = np.lexsort((units, -values))[:top]
        out.append([SharedFeature(int(units[j]), table.label(int(units[j])), float(values[j])) for j in order])
    return out
