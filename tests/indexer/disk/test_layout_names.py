"""disk/layout.py names every path a data directory and a collection directory hold: whatever a
collection goes through (writes, a sweep, the traffic sample, a reindex, a split into shards),
each file on disk is one the layout names."""

from pathlib import Path

import vecdial
from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.layout import JobsLayout, reshard_stagings, shard_name, sweep_file, witness_of
from vecdial.indexer.disk.manifest import MANIFEST_FILE, read_manifest


def unnamed_files(collection: Collection) -> list[str]:
    """Files in the collection directory that its layout does not name (for the versions it keeps)."""
    layout = collection.layout
    named = {layout.current, layout.write_lock, layout.reindex_lock, layout.query_sample}
    for version in collection.version_names():
        version_dir = layout.version(version)
        manifest = read_manifest(version_dir)
        named |= {layout.log(version), witness_of(layout.log(version)), version_dir / MANIFEST_FILE, sweep_file(version_dir)}
        named |= {version_dir / name for name in manifest.files}
    on_disk = [p for p in collection.path.rglob("*") if p.is_file()]
    return sorted(str(p.relative_to(collection.path)) for p in on_disk if p not in named)


def test_every_file_of_a_written_swept_and_sampled_collection_is_named_by_the_layout(tiny_data_dir, outside_vectors):
    col = vecdial.connect(tiny_data_dir).open("tiny")
    col.upsert(["a", "b", "c"], outside_vectors[:3])
    col.keep_queries(outside_vectors[3:8])
    col.sweep(queries="documents", n=20, budgets=["binary:rescore=0", "exact"], show_progress=False)
    layout = Collection(tiny_data_dir, "tiny").layout
    assert layout.log("v000001").stat().st_size > 0 and witness_of(layout.log("v000001")).is_file()
    assert layout.query_sample.stat().st_size == 5 * 384 * 4
    assert sweep_file(layout.version("v000001")).is_file()
    assert unnamed_files(Collection(tiny_data_dir, "tiny")) == []


def test_a_reindexed_collection_holds_only_named_files_and_its_job_status_is_where_the_layout_says(tiny_data_dir, outside_vectors):
    col = vecdial.connect(tiny_data_dir).open("tiny")
    col.upsert(["a", "b"], outside_vectors[:2])
    job = col.reindex(wait=True, show_progress=False)
    collection = Collection(tiny_data_dir, "tiny")
    assert collection.version_names() == ["v000001", "v000002"] and collection.current_version_name() == "v000002"
    assert unnamed_files(collection) == []
    jobs = JobsLayout.of(tiny_data_dir)
    assert jobs.status(job.id).is_file() and [p.name for p in jobs.dir.glob(jobs.statuses)] == [jobs.status(job.id).name]


def test_a_sharded_collection_holds_its_shard_manifest_and_its_shards_each_an_ordinary_collection(tiny_data_dir):
    vecdial.connect(tiny_data_dir).shard("tiny", 2, show_progress=False)
    collection = Collection(tiny_data_dir, "tiny")
    layout = collection.layout
    assert collection.sharded() and not collection.exists()
    assert sorted(p.name for p in layout.path.iterdir()) == sorted([layout.shards_manifest.name, layout.shards.name])
    assert sorted(p.name for p in layout.shards.iterdir()) == [shard_name(0), shard_name(1)]
    shards = [Collection(layout.shards, shard_name(i)) for i in range(2)]
    assert all(unnamed_files(shard) == [] for shard in shards)
    assert sum(len(shard.open(verify_checksums=False).ids) for shard in shards) == 300
    assert not any(Path(tiny_data_dir).glob(reshard_stagings("tiny"))), "the staging directory is gone after the swap"
