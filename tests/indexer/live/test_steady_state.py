"""A collection that only overwrites its own ids holds the same structures however long it runs."""

import gc

import numpy as np

import vecdial
from vecdial.indexer.disk.version import Version
from vecdial.indexer.live.segment import Segment


def live_objects(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


def test_overwrites_searches_and_reindexes_keep_the_live_structures_bounded(tiny_data_dir, demo_dataset):
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    ids, _ = docs.ids(limit=10_000)
    rng = np.random.default_rng(3)
    pool = np.asarray(demo_dataset.vectors[1000:1400])
    seen, versions, segments = [], live_objects(Version), live_objects(Segment)  # this handle's, and any other test's
    for round in range(5):
        for _ in range(10):
            pick = rng.choice(len(ids), 4, replace=False)
            docs.upsert([ids[p] for p in pick], pool[rng.integers(len(pool), size=4)])
            docs.search(pool[int(rng.integers(len(pool)))], k=10, budget="binary:rescore=10")
        docs.reindex({"seed": round + 1}, wait=True, show_progress=False)
        docs.search(pool[0], k=10)
        info = docs.info()
        seen.append((info.size, info.segment_size, live_objects(Version), live_objects(Segment)))
    assert {s[0] for s in seen} == {300}  # overwrites only: the size stays put
    assert all(segment == 0 for _, segment, _, _ in seen)  # every reindex folded the writes in
    assert max(s[2] for s in seen) <= versions and max(s[3] for s in seen) <= segments  # old ones are let go
