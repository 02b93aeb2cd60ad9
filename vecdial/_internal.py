"""Internal: what the HTTP service (`vecdial.service`) and the benchmarks (`bench/`) use beneath
the front door. Not part of the public API: names come and go without notice.

User code imports `vecdial` alone. The service and the benchmarks import `vecdial` and this
module, never `vecdial.indexer.*` or `vecdial.models.*` directly (tests/test_layout.py checks),
so this file is the one list of everything they reach past the front door.

Names load lazily (PEP 562), from the module `_WHERE` names, so importing this module costs
nothing and a name pulls in only its own module (the encoder's or the trainer's torch only
when asked for). The `TYPE_CHECKING` imports give type checkers the same names;
tests/test_layout.py checks the two lists agree.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vecdial.api import Collection, Database
    from vecdial.indexer.codecs.rotation import Rotation
    from vecdial.indexer.disk.collection import Collection as CollectionDir
    from vecdial.indexer.disk.layout import serving_shard_name as shard_name
    from vecdial.indexer.disk.manifest import MANIFEST_FILE, manifest_digest
    from vecdial.indexer.eval.metrics import mrr_at_k, ndcg_at_k, recall_at_k
    from vecdial.indexer.features.explain import query_code, shared_features
    from vecdial.indexer.features.labels import feature_table
    from vecdial.indexer.features.steering import find_features, load_decoder, steer
    from vecdial.indexer.features.table import FeatureTable, codes_from_postings, hit_codes_from_postings
    from vecdial.indexer.filters.demo import demo_payloads
    from vecdial.indexer.io.demo import demo_embeddings, load_demo_corpus
    from vecdial.indexer.io.readers import FORMATS, Dataset
    from vecdial.indexer.jobs.build import build_version
    from vecdial.indexer.jobs.create import build_collection
    from vecdial.indexer.jobs.store import JobStore
    from vecdial.indexer.lexical import LexicalIndex, open_lexical, write_lexical
    from vecdial.indexer.live.collection import LiveCollection
    from vecdial.indexer.modes.settings import KNOBS, flat_changes
    from vecdial.indexer.modes.sparse_build import build_sparse
    from vecdial.indexer.native import set_omp_threads
    from vecdial.indexer.plan.compile import compile_plan
    from vecdial.indexer.plan.execute import search as search_view
    from vecdial.indexer.plan.fusion import DEFAULT_WEIGHTS, HybridSpec, fuse, union_rows
    from vecdial.indexer.scale.engines import InProcess, engine_for
    from vecdial.indexer.scale.shards import ShardHits, merge_hits, shard_of
    from vecdial.indexer.stores import kernels
    from vecdial.indexer.stores.blocks import ROWS_FILE
    from vecdial.indexer.vectors import normalize_rows
    from vecdial.models.encoder import MODEL_DIM, MODEL_NAME, encode_texts
    from vecdial.models.sparse_autoencoder import SparseAutoencoder
    from vecdial.remote import RemoteCollection, RemoteDatabase
    from vecdial.remote_http import b64

# name -> (module, attribute in it); the attribute is the name unless given.
_WHERE: dict[str, tuple[str, str]] = {
    # the service
    "FORMATS": ("vecdial.indexer.io.readers", "FORMATS"),
    "KNOBS": ("vecdial.indexer.modes.settings", "KNOBS"),
    "flat_changes": ("vecdial.indexer.modes.settings", "flat_changes"),
    "JobStore": ("vecdial.indexer.jobs.store", "JobStore"),
    "set_omp_threads": ("vecdial.indexer.native", "set_omp_threads"),
    "ShardHits": ("vecdial.indexer.scale.shards", "ShardHits"),
    "merge_hits": ("vecdial.indexer.scale.shards", "merge_hits"),
    "shard_name": ("vecdial.indexer.disk.layout", "serving_shard_name"),
    "shard_of": ("vecdial.indexer.scale.shards", "shard_of"),
    "demo_payloads": ("vecdial.indexer.filters.demo", "demo_payloads"),
    "demo_embeddings": ("vecdial.indexer.io.demo", "demo_embeddings"),
    "load_demo_corpus": ("vecdial.indexer.io.demo", "load_demo_corpus"),
    "MODEL_NAME": ("vecdial.models.encoder", "MODEL_NAME"),
    # the benchmarks
    "MODEL_DIM": ("vecdial.models.encoder", "MODEL_DIM"),
    "encode_texts": ("vecdial.models.encoder", "encode_texts"),
    "SparseAutoencoder": ("vecdial.models.sparse_autoencoder", "SparseAutoencoder"),
    "Dataset": ("vecdial.indexer.io.readers", "Dataset"),
    "CollectionDir": ("vecdial.indexer.disk.collection", "Collection"),
    "MANIFEST_FILE": ("vecdial.indexer.disk.manifest", "MANIFEST_FILE"),
    "manifest_digest": ("vecdial.indexer.disk.manifest", "manifest_digest"),
    "ROWS_FILE": ("vecdial.indexer.stores.blocks", "ROWS_FILE"),
    "kernels": ("vecdial.indexer.stores", "kernels"),
    "Rotation": ("vecdial.indexer.codecs.rotation", "Rotation"),
    "compile_plan": ("vecdial.indexer.plan.compile", "compile_plan"),
    "search_view": ("vecdial.indexer.plan.execute", "search"),
    "DEFAULT_WEIGHTS": ("vecdial.indexer.plan.fusion", "DEFAULT_WEIGHTS"),
    "HybridSpec": ("vecdial.indexer.plan.fusion", "HybridSpec"),
    "fuse": ("vecdial.indexer.plan.fusion", "fuse"),
    "union_rows": ("vecdial.indexer.plan.fusion", "union_rows"),
    "LexicalIndex": ("vecdial.indexer.lexical", "LexicalIndex"),
    "open_lexical": ("vecdial.indexer.lexical", "open_lexical"),
    "write_lexical": ("vecdial.indexer.lexical", "write_lexical"),
    "mrr_at_k": ("vecdial.indexer.eval.metrics", "mrr_at_k"),
    "ndcg_at_k": ("vecdial.indexer.eval.metrics", "ndcg_at_k"),
    "recall_at_k": ("vecdial.indexer.eval.metrics", "recall_at_k"),
    "build_version": ("vecdial.indexer.jobs.build", "build_version"),
    "build_collection": ("vecdial.indexer.jobs.create", "build_collection"),
    "build_sparse": ("vecdial.indexer.modes.sparse_build", "build_sparse"),
    "InProcess": ("vecdial.indexer.scale.engines", "InProcess"),
    "engine_for": ("vecdial.indexer.scale.engines", "engine_for"),
    "normalize_rows": ("vecdial.indexer.vectors", "normalize_rows"),
    "query_code": ("vecdial.indexer.features.explain", "query_code"),
    "shared_features": ("vecdial.indexer.features.explain", "shared_features"),
    "feature_table": ("vecdial.indexer.features.labels", "feature_table"),
    "find_features": ("vecdial.indexer.features.steering", "find_features"),
    "load_decoder": ("vecdial.indexer.features.steering", "load_decoder"),
    "steer": ("vecdial.indexer.features.steering", "steer"),
    "FeatureTable": ("vecdial.indexer.features.table", "FeatureTable"),
    "codes_from_postings": ("vecdial.indexer.features.table", "codes_from_postings"),
    "hit_codes_from_postings": ("vecdial.indexer.features.table", "hit_codes_from_postings"),
    "b64": ("vecdial.remote_http", "b64"),
}


def __getattr__(name: str) -> Any:
    """Load `name` from its module on first use (PEP 562) and keep it here."""
    try:
        module, attribute = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    parent = importlib.import_module(module)
    value = getattr(parent, attribute) if hasattr(parent, attribute) else importlib.import_module(f"{module}.{attribute}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*_WHERE, *_FUNCTIONS])


def cached(db: Database | RemoteDatabase, name: str) -> Collection | RemoteCollection | None:
    """The handle if `db` has opened `name` already: a dict lookup, never I/O (the server asks
    this on every request before it decides whether opening may block)."""
    return db._cached(name)


def live_of(collection: Collection) -> LiveCollection:
    """The live state behind a local handle (its serving version, write segment and log), for
    benchmarks that time the layers beneath `search`."""
    return collection._live


_FUNCTIONS = ("cached", "live_of")
__all__ = sorted([*_WHERE, *_FUNCTIONS])
