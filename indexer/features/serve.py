"""A version's features in service: written at build, opened once, used by search and browsing.

- Build (`write_features`): once the postings and the texts are written, the codes of every
  row are read back from the postings and each unit is labelled from its top documents'
  texts (labels.py); the table's files sit beside the postings and are checksummed with
  the rest of the version. A version without texts gets no table: its features can still be
  steered by id and explained, unlabelled.
- Search: `steer_queries` moves the unit queries along the decoder directions of the named
  features before any mode sees them; `hit_features` lists, per hit, the features it shares
  with the (steered) query, for version rows from the postings and for rows written since
  from the write segment's codes.
- Browsing: `browse` lists features with their labels, frequency and top documents.

Every entry point needs sparse codes: a collection without them gets a BudgetError (HTTP 422)
saying to build with `--sparse`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from vecdial.indexer.errors import BudgetError, InvalidInput, read_file
from vecdial.indexer.features.explain import query_code, shared_features
from vecdial.indexer.features.steering import WEIGHTS_FILE, SteerKey, load_decoder, resolve_steer, steer
from vecdial.indexer.features.table import LABELS_FILE, FeatureTable, codes_from_postings, hit_codes_from_postings
from vecdial.indexer.stores.sparse import DOCS_FILE, INDPTR_FILE, VALUES_FILE

# |weight| above this is refused: at 1.0 the steered top 10 keeps 40-55% of the plain one, at
# 2.0 19% (steering.py's table); past 2 the feature's direction outweighs the query itself.
MAX_WEIGHT = 2.0
MAX_STEER = 64  # features one query may be steered by
RESOLVED = 4096  # steer fields remembered per version
SHARED_TOP = 5  # shared features listed per hit
SNIPPET_CHARS = 160
log = logging.getLogger("vecdial.features")
NO_SPARSE = 'this collection has no sparse codes, so it has no features: rebuild it with sparse codes (`vecdial build --sparse`, or settings {"sparse": {}}) to steer or explain by features'


@dataclass(frozen=True)
class VersionFeatures:
    """A version's features as a search uses them.

    table: per unit its label, top rows and frequency (an unlabelled table, all units
    without documents, when the version was built without texts). decoder: (units, dim)
    float32 decoder directions, in the unrotated space of the version's unit vectors.
    """

    table: FeatureTable
    decoder: np.ndarray
    labelled: bool
    # steer fields resolved to their units: a label query scans every label (~2 ms for 3k units)
    resolved: dict = field(default_factory=dict, repr=False, compare=False)

    def resolve(self, steer_by: dict[str | int, float]) -> list[SteerKey]:
        """resolve_steer of a checked steer field, remembered (up to RESOLVED entries)."""
        key = tuple((str(k), w) for k, w in steer_by.items())
        found = self.resolved.get(key)
        if found is None:
            found = resolve_steer(self.table, steer_by)
            if len(self.resolved) >= RESOLVED:
                self.resolved.clear()
            self.resolved[key] = found
        return found


def write_features(out: Path, texts: Sequence[str | None], rows: int) -> bool:
    """Label the units of the sparse codes just written into `out` (a staged version) from
    `texts` (rows of them, in the version's row order) and save the table beside them.

    Returns True when written; False when the version has no sparse postings, or when
    scikit-learn (the `sparse` extra) is missing: the version then serves unlabelled features.
    """
    from vecdial.indexer.features.labels import feature_table

    if not (out / INDPTR_FILE).is_file():
        return False
    try:
        import sklearn  # noqa: F401
    except ImportError:
        log.warning("no feature labels: scikit-learn is not installed (pip install 'vecdial[sparse]')")
        return False
    codes = codes_from_postings(np.load(out / INDPTR_FILE), np.load(out / DOCS_FILE), np.load(out / VALUES_FILE), rows)
    feature_table(codes, texts).save(out)
    return True


def open_features(path: Path, params: Mapping[str, Any], units: int) -> VersionFeatures:
    """Open the features of the version at `path` (its sparse codec entry `params`): the table
    memory-mapped when the build labelled it, and the decoder read with numpy."""
    decoder = read_file(path, WEIGHTS_FILE, lambda p: load_decoder(path))
    if params.get("features"):
        table = read_file(path, LABELS_FILE, lambda p: FeatureTable.load(path, mmap=True))
        return VersionFeatures(table, decoder, labelled=True)
    empty = FeatureTable(
        np.full((units, 0), -1, dtype=np.int64),
        np.zeros((units, 0), dtype=np.float32),
        np.zeros(units, dtype=np.float32),
        [[] for _ in range(units)],
        [[] for _ in range(units)],
    )
    return VersionFeatures(empty, decoder, labelled=False)


def features_of(version: Any) -> VersionFeatures:
    """The version's features (opened on first use, see Version.features); BudgetError without sparse codes."""
    found = version.features()
    if found is None:
        raise BudgetError(NO_SPARSE)
    return found


def check_steer(steer_by: Any) -> dict[str | int, float]:
    """A `steer` field as sent -> {feature id or label query: weight}; InvalidInput saying what
    is wrong with it (not a mapping, a weight that is not a number, |weight| > MAX_WEIGHT)."""
    if not isinstance(steer_by, Mapping):
        raise InvalidInput('steer must be an object of feature -> weight, e.g. {"1304": 0.5, "json": 0.3}')
    if len(steer_by) > MAX_STEER:
        raise InvalidInput(f"steer names {len(steer_by)} features: steer by at most {MAX_STEER}")
    out: dict[str | int, float] = {}
    for key, weight in steer_by.items():
        if not isinstance(key, (str, int)) or isinstance(key, bool) or (isinstance(key, str) and not key.strip()):
            raise InvalidInput(f"steer: {key!r} is not a feature: use a feature id or words of its label")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise InvalidInput(
                f"steer: the weight of {key!r} is {weight!r}, not a number: use e.g. 0.5 (mostly reorders the hits) or 1 (replaces about half)"
            )
        if abs(weight) > MAX_WEIGHT:
            raise InvalidInput(
                f"steer: the weight of {key!r} is {weight:g}: use -{MAX_WEIGHT:g}..{MAX_WEIGHT:g} "
                "(up to 0.5 mostly reorders the hits, 1 replaces about half, 2 most)"
            )
        out[key] = float(weight)
    return out


def steer_queries(version: Any, unit: np.ndarray, steer_by: Any) -> tuple[np.ndarray, list[dict]]:
    """Unit queries (nq, dim) steered by `steer_by` ({feature id or label query: weight}),
    renormalised (unchanged, bit for bit, when every weight is 0), and what explain shows:
    per key {key, feature, label, weight}, the feature it resolved to. InvalidInput for an
    unknown feature, a label query no label matches, or weights that cancel a query."""
    weights = check_steer(steer_by)
    features = features_of(version)
    if not features.labelled and any(not (isinstance(k, int) or k.strip().isdigit()) for k in weights):
        raise InvalidInput("steer: this collection's features have no labels (it was built without texts): steer by feature id")
    try:
        resolved = features.resolve(weights)
        moves: dict[int, float] = {}
        for key in resolved:
            moves[key.unit] = moves.get(key.unit, 0.0) + key.weight
        return steer(unit, moves, features.decoder), [key.to_dict(features.table) for key in resolved]
    except ValueError as exc:
        raise InvalidInput(f"steer: {exc}") from None


def hit_features(space: Any, query_unit: np.ndarray, rows: np.ndarray, counts: np.ndarray, top: int = SHARED_TOP) -> list[list[list[dict]]]:
    """Per query, per hit, the `top` features the hit shares with the query, largest
    contribution (query activation x hit activation) first, as dicts {feature, label, contribution}.

    space: the search's row space (plan/rows.py RowSpace: the version's rows, then those
    written since). query_unit: (nq, dim) the queries as searched (steered, if they were).
    rows: (nq, k) its global rows, -1 pads; counts: (nq,) hits found per query.
    """
    version = space.version
    features = features_of(version)
    units, weights = version.store("sparse").encode(query_unit)
    hidden = features.table.units
    out = []
    for q, n in enumerate(np.asarray(counts).tolist()):
        codes = None
        for store, local in zip(space.stores, space.split(rows[q, :n])):
            if store is not version and not (local >= 0).any():
                continue  # the segment's codes are read only for its hits
            index = store.store("sparse").index
            found = hit_codes_from_postings(index.indptr, index.docs, index.values, units[q], local)
            codes = found if codes is None else codes + found
        shared = shared_features(query_code(units[q], weights[q], hidden), sp.csr_matrix(codes), features.table, top=top)
        out.append([[feature.to_dict() for feature in listed] for listed in shared])
    return out


def browse(view: Any, query: str | None = None, limit: int = 50) -> list[dict]:
    """Features of the serving version with their labels: those whose label holds the words of
    `query` (best match first; a number names one feature), or else every live feature, most
    frequent first. Each: {id, label, terms, frequency, documents: [{id, text, activation}]},
    documents being its top-activating live items (text cut to SNIPPET_CHARS)."""
    from vecdial.indexer.features.steering import find_features

    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit={limit} is out of range: use 1..1000")
    version = view.version
    features = features_of(version)
    table = features.table
    if not features.labelled:
        raise InvalidInput("this collection's features have no labels or documents: it was built without texts; rebuild it with texts")
    if query is not None and query.strip().isdigit():
        unit = int(query)
        if not 0 <= unit < table.units:
            raise InvalidInput(f"no feature {unit}: features are numbered 0..{table.units - 1}")
        units = [unit]
    elif query is not None and query.strip():
        units = find_features(table, query, limit=limit).tolist()
    else:
        live = table.live_units
        units = live[np.lexsort((live, -np.asarray(table.frequency)[live]))][:limit].tolist()
    dead = view.alive.dead if view.alive is not None else None
    listed = []
    for unit in units:
        doc_rows, activations = table.top_documents(unit)
        keep = np.ones(len(doc_rows), dtype=bool) if dead is None else ~dead[doc_rows]
        doc_rows, activations = np.asarray(doc_rows[keep]), np.asarray(activations[keep])
        texts = version.texts(doc_rows)
        documents = [
            {"id": item, "text": _snippet(text), "activation": round(float(a), 4)}
            for item, text, a in zip(version.id_list(doc_rows), texts, activations.tolist())
        ]
        listed.append(
            {
                "id": int(unit),
                "label": table.label(unit),
                "terms": list(table.terms[unit]),
                "frequency": round(float(table.frequency[unit]), 6),
                "documents": documents,
            }
        )
    return listed


def _snippet(text: str | None) -> str | None:
    if text is None or len(text) <= SNIPPET_CHARS:
        return text
    return text[: SNIPPET_CHARS - 1].rstrip() + "…"
