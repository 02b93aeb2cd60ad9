"""A damaged version never answers: opening it raises CorruptIndex naming the file, and only it.

Every case damages a copy of the tiny collection (real MiniLM vectors, with texts) and
opens it the way a user does, through `vecdial.connect(dir).open(name)` with default settings.
"""

import json
import shutil

import numpy as np
import pytest

import vecdial
from vecdial.indexer.disk.collection import Collection
from vecdial.indexer.disk.manifest import MANIFEST_FILE, file_entry
from vecdial.indexer.errors import CorruptIndex

DATA_FILES = [
    "binary_codes.npy",
    "codecs.npz",
    "dense_blocks.npy",
    "dense_prefix_sq.npy",
    "dense_rows.npy",
    "ids.npy",
    "rabitq.faiss",
    "text_offsets.npy",
    "texts.jsonl",
]


@pytest.fixture
def version_dir(tiny_data_dir):
    collection = Collection(tiny_data_dir, "tiny")
    return collection.versions_dir / collection.current_version_name()


def flip(path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= mask
    path.write_bytes(bytes(data))


def open_default(data_dir):
    return vecdial.connect(data_dir).open("tiny")


def test_the_tiny_version_holds_exactly_the_files_these_cases_damage(version_dir):
    files = sorted(p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith("lexical/")] == sorted(DATA_FILES + [MANIFEST_FILE])
    assert "lexical/lexical.json" in files


def test_a_flipped_byte_in_the_lexical_index_is_caught_and_named(tiny_data_dir, version_dir):
    for path in sorted((version_dir / "lexical").iterdir()):
        flip(path, path.stat().st_size // 2)
        with pytest.raises(CorruptIndex, match=f"file lexical/{path.name} fails its checksum"):
            open_default(tiny_data_dir)
        flip(path, path.stat().st_size // 2)  # undone: the next file is the only damage


@pytest.mark.parametrize("name", DATA_FILES)
@pytest.mark.parametrize("where", [0.1, 0.5, -1])
def test_a_flipped_byte_in_any_data_file_is_caught_by_default(tiny_data_dir, version_dir, name, where):
    path = version_dir / name
    flip(path, int(where * path.stat().st_size) if where > 0 else -1)
    with pytest.raises(CorruptIndex, match=f"file {name} fails its checksum"):
        open_default(tiny_data_dir)


@pytest.mark.parametrize("offset", [30, 200, 400, 700, -40])
def test_a_flipped_byte_in_the_manifest_is_caught(tiny_data_dir, version_dir, offset):
    flip(version_dir / MANIFEST_FILE, offset)
    with pytest.raises(CorruptIndex, match=MANIFEST_FILE):
        open_default(tiny_data_dir)


def test_a_flipped_digit_that_leaves_valid_json_still_fails_the_manifest_checksum(tiny_data_dir, version_dir):
    path = version_dir / MANIFEST_FILE
    raw = json.loads(path.read_text())
    text = path.read_text().replace(f'"count": {raw["count"]}', f'"count": {raw["count"] - 1}')
    path.write_text(text)
    with pytest.raises(CorruptIndex, match=f"{MANIFEST_FILE} fails its checksum"):
        open_default(tiny_data_dir)


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"[1, 2]", b'{"format_version": 1, "dense": 5}', '{"dim": "é'.encode("latin-1")])
def test_a_garbled_manifest_is_corrupt(tiny_data_dir, version_dir, content):
    (version_dir / MANIFEST_FILE).write_bytes(content)
    with pytest.raises(CorruptIndex, match=MANIFEST_FILE):
        open_default(tiny_data_dir)


def relist(version_dir, name) -> None:
    """Record a damaged file's size and hash in the manifest: damage the checksums cannot see
    (done before hashing, or with checksums off), so the format checks must catch it."""
    manifest = json.loads((version_dir / MANIFEST_FILE).read_text())
    manifest["files"][name] = file_entry(version_dir / name).model_dump()
    manifest.pop("checksum", None)
    (version_dir / MANIFEST_FILE).write_text(json.dumps(manifest))


def garble_header(path):
    flip(path, 20, 0xFF)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path):
    path.write_bytes(b"")


def pickled(path):
    np.save(path, np.array([{"not": "numbers"}] * 3, dtype=object), allow_pickle=True)


@pytest.mark.parametrize("name", ["binary_codes.npy", "dense_blocks.npy", "dense_prefix_sq.npy", "ids.npy", "text_offsets.npy"])
@pytest.mark.parametrize("damage", [garble_header, truncate, empty, pickled])
@pytest.mark.parametrize("verify", [True, False])
def test_a_broken_npy_is_corrupt_and_named_whatever_the_checksums_say(tiny_data_dir, version_dir, name, damage, verify):
    damage(version_dir / name)
    relist(version_dir, name)
    with pytest.raises(CorruptIndex, match=name):
        vecdial.connect(tiny_data_dir, verify_checksums=verify).open("tiny")


@pytest.mark.parametrize("damage", [lambda p: flip(p, p.stat().st_size // 2), truncate, empty])
@pytest.mark.parametrize("verify", [True, False])
def test_a_broken_npz_is_corrupt_not_a_zip_error(tiny_data_dir, version_dir, damage, verify):
    damage(version_dir / "codecs.npz")
    relist(version_dir, "codecs.npz")
    with pytest.raises(CorruptIndex, match="codecs.npz"):
        vecdial.connect(tiny_data_dir, verify_checksums=verify).open("tiny")


@pytest.mark.parametrize("damage", [lambda p: flip(p, 0, 0xFF), lambda p: flip(p, 8, 0x01), truncate, empty])
def test_a_broken_rabitq_index_is_corrupt_and_named(tiny_data_dir, version_dir, damage):
    damage(version_dir / "rabitq.faiss")
    relist(version_dir, "rabitq.faiss")
    with pytest.raises(CorruptIndex, match="rabitq.faiss"):
        vecdial.connect(tiny_data_dir, verify_checksums=False).open("tiny")


def test_texts_that_do_not_match_their_offsets_are_corrupt(tiny_data_dir, version_dir):
    path = version_dir / "texts.jsonl"
    path.write_bytes(path.read_bytes()[:-10])
    relist(version_dir, "texts.jsonl")
    with pytest.raises(CorruptIndex, match="text_offsets.npy does not match texts.jsonl"):
        open_default(tiny_data_dir)


def test_a_file_damaged_after_this_process_verified_it_is_caught_at_the_next_open(tiny_data_dir, version_dir, tiny_dataset):
    assert open_default(tiny_data_dir).search(tiny_dataset.vectors[3], k=1).ids[0, 0] == tiny_dataset.ids[3]
    flip(version_dir / "dense_blocks.npy", -7)
    with pytest.raises(CorruptIndex, match="dense_blocks.npy fails its checksum"):
        open_default(tiny_data_dir)


@pytest.mark.parametrize("content", [b"", b"v0000\n", b"\xff\xfe", b"../../etc\n", b"v000009\n"])
def test_a_garbled_current_pointer_is_corrupt(tiny_data_dir, content):
    (tiny_data_dir / "tiny" / "CURRENT").write_bytes(content)
    with pytest.raises(CorruptIndex, match="CURRENT|missing"):
        open_default(tiny_data_dir)


def test_one_broken_collection_leaves_the_others_serving(tiny_data_dir, version_dir, tiny_dataset):
    shutil.copytree(tiny_data_dir / "tiny", tiny_data_dir / "other")
    flip(version_dir / "binary_codes.npy", 1000)
    db = vecdial.connect(tiny_data_dir)
    with pytest.raises(CorruptIndex, match="binary_codes.npy"):
        db.open("tiny")
    hits = db.open("other").search(tiny_dataset.vectors[9], k=1, budget="binary:rescore=10")
    assert hits.ids[0, 0] == tiny_dataset.ids[9]
