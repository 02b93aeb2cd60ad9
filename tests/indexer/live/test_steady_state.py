"""A collection that only overwrites its own ids holds the same structures however long it runs."""

import gc
from pathlib import Path

import numpy as np

import vecdial
from vecdial.indexer.disk.version import Version
from vecdial.indexer.live.segment import Segment


def live_objects(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)  # type(): no lazy proxy is asked for __class__


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


def test_a_collection_whose_texts_were_all_overwritten_away_still_reindexes(tiny_data_dir, demo_dataset):
    """An upsert replaces the whole item: once every text is gone, the BM25 index has no term to hold."""
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    assert docs.info().has_texts
    ids, _ = docs.ids(limit=10_000)
    docs.upsert(ids, np.asarray(demo_dataset.vectors[1000 : 1000 + len(ids)]))  # vectors only: no texts left
    job = docs.reindex({"seed": 7}, wait=True, show_progress=False)
    assert job.status.state == "succeeded", job.status.message
    assert docs.info().size == len(ids) and docs.search(demo_dataset.vectors[1005], k=1).ids[0, 0] == ids[5]


def mapped_files(directory: Path) -> list[str]:
    """Files under `directory` this process has mapped (Linux: /proc/self/maps)."""
    return [line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines() if str(directory) in line]


def test_a_swapped_out_version_lets_go_of_its_mapped_files_without_the_cycle_collector(tiny_data_dir, demo_dataset):
    """A server swaps versions for as long as it runs. An old version's files must be unmapped when the
    last search using it ends, not whenever Python's cycle collector next runs: a 30-minute soak grew
    about 7 MiB per reindex until a full collection happened to run."""
    docs = vecdial.connect(tiny_data_dir).open("tiny")
    gc.collect()
    gc.disable()
    try:
        docs.warm_up()  # every mode's budgets, and the encoder: the collection takes text queries
        first = tiny_data_dir / "tiny" / "versions" / docs.info().version
        docs.search("ships at sea", k=5, hybrid={})  # opens the lexical index too
        assert mapped_files(first)
        docs.reindex({"seed": 1}, wait=True, show_progress=False)
        docs.search(demo_dataset.vectors[1000], k=5)
        assert mapped_files(first) == []
    finally:
        gc.enable()
