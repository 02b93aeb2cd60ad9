"""One damaged collection never keeps the server from starting: it is reported (log, /readyz,
/metrics) and the healthy ones serve."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import vecdial


@pytest.fixture
def damaged_dir(tiny_data_dir, tiny_dataset):
    """tiny_data_dir plus 'crc' (one byte of codecs.npz flipped) and 'cut' (dense_blocks.npy truncated),
    both built from the real tiny vectors."""
    db = vecdial.connect(tiny_data_dir)
    for name in ("crc", "cut"):
        db.create(name, vectors=np.asarray(tiny_dataset.vectors[:100]), ids=list(tiny_dataset.ids[:100]), show_progress=False)
    codecs = next((tiny_data_dir / "crc").rglob("codecs.npz"))
    raw = bytearray(codecs.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    codecs.write_bytes(bytes(raw))
    blocks = next((tiny_data_dir / "cut").rglob("dense_blocks.npy"))
    blocks.write_bytes(blocks.read_bytes()[:200])
    return tiny_data_dir


def test_damaged_collections_are_reported_and_the_healthy_one_serves(make_client, damaged_dir, inside, demo_dataset, caplog):
    with caplog.at_level(logging.ERROR, logger="vecdial.registry"):
        client = make_client()
    logged = {record.collection: record.getMessage() for record in caplog.records if record.name == "vecdial.registry"}
    assert set(logged) == {"crc", "cut"} and "codecs.npz" in logged["crc"] and "dense_blocks.npy" in logged["cut"]

    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "degraded" and body["collections"] == 1 and set(body["broken"]) == {"crc", "cut"}
    assert "codecs.npz" in body["broken"]["crc"] and "dense_blocks.npy" in body["broken"]["cut"]
    assert str(damaged_dir) not in str(body)

    hit = client.post("/v1/collections/tiny/search", json={"vector": inside[0], "k": 1}).json()["hits"][0]
    assert hit["id"] == demo_dataset.ids[0]
    assert [c["name"] for c in client.get("/v1/collections").json()] == ["tiny"]
    refused = client.post("/v1/collections/crc/search", json={"vector": inside[0]}).json()
    assert refused["error"] == "corrupt_index" and "codecs.npz" in refused["message"] and str(damaged_dir) not in refused["message"]
    metrics = client.get("/metrics").text
    assert 'vecdial_collection_broken{collection="crc"} 1.0' in metrics and 'vecdial_collection_broken{collection="cut"} 1.0' in metrics


def test_readiness_returns_once_the_broken_collections_are_gone(make_client, damaged_dir):
    client = make_client()
    assert client.get("/readyz").status_code == 503
    for name in ("crc", "cut"):
        assert client.delete(f"/v1/collections/{name}").status_code == 204
    assert client.get("/readyz").json() == {"status": "ready", "collections": 1, "broken": {}, "damaged": {}}
    assert "vecdial_collection_broken{" not in client.get("/metrics").text
