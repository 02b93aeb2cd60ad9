"""SIGKILL a reindex or a replacing build at each step that leaves something on disk.

A child process runs the job with one function replaced by a SIGKILL to itself, so
it dies exactly there (no `finally`, no cleanup) after acknowledging writes. Then,
in the parent: CURRENT names a version that opens with every checksum verified,
opening the collection removes every leftover, every acknowledged write is served,
and the next reindex succeeds, keeping the version that served as the previous one.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecdial
from vecdial.indexer.disk.collection import Collection, version_number
from vecdial.indexer.disk.integrity import forget_verdicts

CHILD = textwrap.dedent(
    r"""
    import os, signal, sys
    from pathlib import Path
    import numpy as np

    data_dir, kind, point, extra_file = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    extra = np.load(extra_file)

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    import vecdial
    from vecdial.indexer.disk import collection as disk_collection
    from vecdial.indexer.jobs import build, reindex, replace
    from vecdial.indexer.live import wal

    real_replace = os.replace
    kills = {
        "export-written": lambda: setattr(reindex, "full_vectors", die),
        "staging": lambda: setattr(build, "file_entry", die),
        "staged": lambda: setattr(reindex, "validate_version", die) if kind == "reindex" else setattr(replace, "open_version", die),
        "renamed": lambda: setattr(wal.WriteAheadLog, "copy_tail", die),
        "renamed-and-logged": lambda: setattr(disk_collection, "write_text_atomic", die),
        "current-half-written": lambda: setattr(os, "replace", lambda a, b: die() if Path(b).name == "CURRENT" else real_replace(a, b)),
        "swapped-not-pruned": lambda: setattr(disk_collection.Collection, "_prune", die),
    }
    kills[point]()

    handle = vecdial.connect(data_dir).open("tiny")

    def acknowledge(name, row):
        handle.upsert([name], extra[row : row + 1])
        print(json.dumps([name, row]), flush=True)

    import json
    if kind == "reindex":
        acknowledge("child-before", 0)
        during = []

        def write_during_build(status):
            if status.phase == "build" and not during:
                during.append(1)
                acknowledge("child-during", 1)

        reindex.start_reindex(data_dir, "tiny", {"dtype": "float16"}, on_update=write_during_build, live=handle._live).run()
    else:
        vectors = np.load(data_dir.parent / "rebuild.npy")
        vecdial.connect(data_dir).create("tiny", vectors, ids=[f"r{i}" for i in range(len(vectors))], replace=True, show_progress=False)
    print("FINISHED", flush=True)
    """
)

REINDEX_POINTS = ["export-written", "staging", "staged", "renamed", "renamed-and-logged", "current-half-written", "swapped-not-pruned"]
BUILD_POINTS = ["staging", "staged", "renamed-and-logged", "current-half-written", "swapped-not-pruned"]


def kill_at(tiny_data_dir, kind: str, point: str, extra: np.ndarray) -> list[tuple[str, int]]:
    """Run the child until it kills itself at `point`; return the writes it acknowledged."""
    np.save(tiny_data_dir.parent / "extra.npy", extra)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tiny_data_dir), kind, point, str(tiny_data_dir.parent / "extra.npy")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, f"the child never reached {point}: {child.returncode}\n{child.stdout}\n{child.stderr}"
    return [tuple(json.loads(line)) for line in child.stdout.splitlines() if line.startswith("[")]


def leftovers(collection: Collection) -> list[str]:
    """Everything in the collection that is not CURRENT's version, the one before it, their logs or a lock."""
    current = version_number(collection.current_version_name())
    found = [p.name for p in collection.path.iterdir() if p.name.startswith(".")]
    found += [p.name for p in collection.versions_dir.iterdir() if version_number(p.name) < 0 or version_number(p.name) > current]
    if collection.layout.wal.is_dir():
        found += [f"wal/{p.name}" for p in collection.layout.wal.iterdir() if not (collection.versions_dir / p.stem).is_dir()]
    return found


def check_survived(tiny_data_dir, acknowledged: dict, deleted: list, expect_sizes: set) -> None:
    collection = Collection(tiny_data_dir, "tiny")
    forget_verdicts()  # hash every file again, as a fresh process would
    serving = collection.current_version_name()
    assert collection.open(verify_checksums=True).size in expect_sizes
    handle = vecdial.connect(tiny_data_dir).open("tiny")  # opening clears what the job left
    assert leftovers(collection) == []

    def all_served():
        for name, vector in acknowledged.items():
            assert handle.search(vector, k=1).ids[0, 0] == name, f"acknowledged write {name} is not served"
        for name, vector in deleted:
            assert name not in handle.search(vector, k=5).id_lists()[0], f"deleted {name} is served"

    all_served()
    status = handle.reindex({}, wait=True, show_progress=False).status
    assert status.state == "succeeded", status.message
    assert status.from_version == serving
    assert sorted(p.name for p in collection.versions_dir.iterdir() if not p.name.startswith(".")) == [serving, status.to_version]
    all_served()


@pytest.mark.parametrize("point", REINDEX_POINTS)
def test_a_reindex_killed_at_any_step_loses_nothing(tiny_data_dir, tiny_dataset, outside_vectors, point):
    parent = vecdial.connect(tiny_data_dir).open("tiny")
    parent.upsert(["parent"], outside_vectors[2:3])
    parent.delete([tiny_dataset.ids[0]])
    acked = kill_at(tiny_data_dir, "reindex", point, outside_vectors)
    assert ("child-before", 0) in acked
    acknowledged = {"parent": outside_vectors[2], **{name: outside_vectors[row] for name, row in acked}}
    check_survived(tiny_data_dir, acknowledged, [(tiny_dataset.ids[0], tiny_dataset.vectors[0])], {300, 301, 302})


@pytest.mark.parametrize("point", BUILD_POINTS)
def test_a_replacing_build_killed_at_any_step_leaves_a_whole_version(tiny_data_dir, tiny_dataset, point):
    np.save(tiny_data_dir.parent / "rebuild.npy", np.asarray(tiny_dataset.vectors[:200]))
    kill_at(tiny_data_dir, "build", point, np.zeros((2, 384), np.float32))
    check_survived(tiny_data_dir, {}, [], {300, 200})


def test_a_killed_child_really_left_leftovers_for_the_open_to_clear(tiny_data_dir, outside_vectors):
    """The suite is not vacuous: before the open, the killed job's files are there."""
    kill_at(tiny_data_dir, "reindex", "renamed-and-logged", outside_vectors)
    collection = Collection(tiny_data_dir, "tiny")
    assert collection.current_version_name() == "v000001"
    assert "v000002" in leftovers(collection) and os.path.exists(collection.layout.log("v000002"))
    vecdial.connect(tiny_data_dir).open("tiny")
    assert leftovers(collection) == []
