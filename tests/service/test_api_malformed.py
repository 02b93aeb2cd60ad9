"""Malformed input is the client's error: a 4xx saying what to change, never a 500, and an
upload's error never names the server's temporary file."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import vecdial
from vecdial.models.encoder import MODEL_NAME

pytestmark = pytest.mark.also_sharded  # over 'tiny' whole and in 2 shards


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, vectors=np.ones((3, 4), np.float32))
    return buffer.getvalue()


def _bad_parquet() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"vector": [[1.0, 2.0]]}), buffer)
    return buffer.getvalue()[:-12]  # footer cut off


UPLOADS = {
    "empty npy": ("npy", b""),
    "npz sent as npy": ("npy", _npz()),
    "npy with a damaged header": ("npy", b"\x93NUMPY\x01\x00garbage"),
    "fvecs with a torn record": ("fvecs", b"\x04\x00\x00\x00\x00\x00\x80?\x00"),
    "parquet without its footer": ("parquet", _bad_parquet()),
    "not parquet at all": ("parquet", b"plain text"),
    "jsonl that is not UTF-8": ("jsonl", b'{"text": "caf\xe9"}\n'),
}


@pytest.mark.parametrize("case", list(UPLOADS))
def test_a_malformed_upload_is_a_422_that_names_no_server_path(client, case):
    fmt, content = UPLOADS[case]
    response = client.post(f"/v1/collections/junk/upload?format={fmt}", content=content)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input" and "uploaded file" in body["message"]
    assert ".uploads" not in body["message"] and str(client.app.state.settings.data_dir) not in body["message"]
    assert client.get("/v1/collections/junk").status_code == 404
    assert not list((client.app.state.settings.data_dir / ".uploads").iterdir())


def test_a_body_that_is_not_utf8_is_a_400_malformed_json(client):
    for path in ("/v1/collections/tiny/search", "/v1/collections/tiny/search/batch", "/v1/collections/tiny/vectors/upsert"):
        response = client.post(path, content=b'{"text": "caf\xe9"}', headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.json()["error"] == "malformed_json", (path, response.text)
        assert "UTF-8" in response.json()["message"]


@pytest.fixture
def mislabelled(client, tiny_dataset):
    """A collection that says its vectors come from the bundled model but has 64 dims (real vectors, cut)."""
    vectors = np.ascontiguousarray(np.asarray(tiny_dataset.vectors[:50])[:, :64])
    db = vecdial.connect(client.app.state.settings.data_dir)
    db.create("cut", vectors=vectors, ids=list(tiny_dataset.ids[:50]), source_model=MODEL_NAME, show_progress=False)
    return "cut"


@pytest.mark.parametrize(
    "path, body",
    [
        ("search", {"text": "how do plants make food"}),
        ("search/batch", {"queries": [{"text": "how do plants make food"}]}),
        ("vectors/upsert", {"items": [{"id": "new", "text": "how do plants make food"}]}),
    ],
)
def test_text_on_a_collection_whose_model_does_not_match_its_dim_is_a_422(client, mislabelled, path, body):
    response = client.post(f"/v1/collections/{mislabelled}/{path}", json=body)
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert "64 dims" in message and "384" in message and "send vectors" in message
    assert client.get(f"/v1/collections/{mislabelled}").json()["size"] == 50


def test_a_create_over_the_dim_limit_is_a_clear_422(make_client):
    default, narrow = make_client(), make_client(max_create_dim=512)
    response = default.post("/v1/collections", json={"name": "wide", "vectors": [[0.5] * 9000]})
    assert response.status_code == 422 and "9000 dims, over this server's limit of 8192" in response.json()["message"]
    response = narrow.post("/v1/collections", json={"name": "wide", "vectors": [[0.5] * 600, [0.25] * 600]})
    assert response.status_code == 422 and "600 dims, over this server's limit of 512" in response.json()["message"]
    assert default.get("/v1/collections/wide").status_code == 404


def test_an_upload_over_the_dim_limit_is_a_clear_422(client):
    buffer = io.BytesIO()
    np.save(buffer, np.full((2, 9000), 0.01, np.float32))
    response = client.post("/v1/collections/wide/upload?format=npy", content=buffer.getvalue())
    assert response.status_code == 422 and "8192" in response.json()["message"] and "uploads" not in response.json()["message"]
    assert client.get("/v1/collections/wide").status_code == 404
