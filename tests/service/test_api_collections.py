"""Collections: list, describe, create from vectors or an uploaded file, drop; names validated."""

import io
import json

import numpy as np
import pytest

import vecdial


def test_list_shows_each_collection_with_size_and_dim(client):
    assert client.get("/v1/collections").json() == [{"name": "tiny", "version": "v000001", "size": 300, "dim": 384}]


def test_describe_lists_modes_their_knobs_and_bytes_per_vector(client):
    info = client.get("/v1/collections/tiny").json()
    assert (info["size"], info["dim"], info["id_kind"], info["text_queries"]) == (300, 384, "str", True)
    modes = {mode["mode"]: mode for mode in info["modes"]}
    assert set(modes) == {"exact", "dense", "binary", "rabitq", "funnel"}  # no sparse codes in 'tiny'
    assert modes["dense"]["knobs"] == {"dim": [1, 384]} and modes["binary"]["knobs"] == {"rescore": [0, 1000]}
    assert 48 <= modes["binary"]["bytes_per_vector"] < modes["exact"]["bytes_per_vector"]  # 384 bits, maybe padded
    assert info["dense_bytes_per_vector"]["32"] < info["dense_bytes_per_vector"]["384"]
    assert info["settings"]["rotation"] == "pca" and info["max_k"] == 1000


def test_create_from_vectors_makes_a_searchable_collection(client, outside):
    response = client.post(
        "/v1/collections", json={"name": "mine", "vectors": outside, "ids": list(range(100, 110)), "settings": {"rotation": "identity"}}
    )
    assert response.status_code == 201
    info = response.json()
    assert (info["size"], info["id_kind"], info["settings"]["rotation"], info["text_queries"]) == (10, "int", "identity", False)
    hits = client.post("/v1/collections/mine/search", json={"vector": outside[4], "k": 1}).json()["hits"]
    assert hits[0]["id"] == 104


def test_creating_an_existing_name_is_a_409(client, outside):
    response = client.post("/v1/collections", json={"name": "tiny", "vectors": outside})
    assert response.status_code == 409 and "exists already" in response.json()["message"]


@pytest.mark.parametrize("name", ["..", ".hidden", "a b", "x" * 65, "semi;colon"])
def test_names_that_are_not_plain_directory_names_are_refused(client, outside, name):
    response = client.post("/v1/collections", json={"name": name, "vectors": outside})
    assert response.status_code == 422 and "invalid collection name" in response.json()["message"]


def test_path_tricks_in_the_url_never_reach_the_disk(client, inside):
    for path in ("/v1/collections/..%2F..%2Fetc/search", "/v1/collections/%2e%2e/search"):
        assert client.post(path, json={"vector": inside[0]}).status_code in (404, 422)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"name": "m", "vectors": [[1.0, 2.0], [1.0]]}, "different lengths"),
        ({"name": "m", "vectors": [[1.0, 2.0]], "ids": [1, 2]}, "2 ids for 1 vectors"),
        ({"name": "m", "vectors": [[1.0, 2.0], [2.0, 1.0]], "ids": [1, "a"]}, "mix integers and strings"),
        ({"name": "m", "vectors": [[1.0, 2.0], [2.0, 1.0]], "ids": [1, 1]}, "not unique"),
        ({"name": "m", "vectors": [[0.0, 0.0]]}, "all zeros"),
        ({"name": "m", "vectors": [[1.0, 2.0]], "settings": {"dtype": "int3"}}, "settings.dtype"),
    ],
)
def test_bad_create_requests_say_what_to_change(client, body, fragment):
    response = client.post("/v1/collections", json=body)
    assert response.status_code == 422 and fragment in response.json()["message"]
    assert client.get("/v1/collections/m").status_code == 404


def test_create_from_an_uploaded_npy_file(client, outside):
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(outside, dtype=np.float32))
    response = client.post("/v1/collections/uploaded/upload?format=npy&dtype=float16", content=buffer.getvalue())
    assert response.status_code == 201
    info = response.json()
    assert (info["size"], info["id_kind"], info["settings"]["dtype"]) == (10, "int", "float16")
    assert not list((client.app.state.settings.data_dir / ".uploads").iterdir())


def test_an_unreadable_upload_is_a_422_and_leaves_nothing(client):
    response = client.post("/v1/collections/junk/upload?format=npy", content=b"not a numpy file")
    assert response.status_code == 422 and "cannot read" in response.json()["message"]
    assert client.get("/v1/collections/junk").status_code == 404


@pytest.mark.parametrize("name, status, fragment", [("tiny", 409, "exists already"), (".hidden", 422, "invalid collection name")])
def test_an_upload_to_a_taken_or_invalid_name_is_refused_before_the_body_is_read(client, name, status, fragment):
    read = []

    def body():  # a streamed body: its chunks are only pulled if the server reads it
        read.append(True)
        yield b"\0" * 1024

    response = client.post(f"/v1/collections/{name}/upload?format=npy", content=body())
    assert response.status_code == status and fragment in response.json()["message"]
    assert read == [] and client.get("/v1/collections/tiny").json()["size"] == 300


def test_an_upload_over_its_limit_is_a_413(make_client):
    client = make_client(max_upload_bytes=2048)
    response = client.post("/v1/collections/big/upload?format=npy", content=b"\0" * 4096)
    assert response.status_code == 413


def test_drop_removes_the_collection(client, tiny_data_dir):
    assert client.delete("/v1/collections/tiny").status_code == 204
    assert not (tiny_data_dir / "tiny").exists()
    assert client.get("/v1/collections/tiny").status_code == 404
    assert client.delete("/v1/collections/tiny").status_code == 404


def test_describe_is_the_python_info_plus_the_server_max_k(client, tiny_data_dir, demo_dataset):
    client.post("/v1/collections/tiny/vectors/delete", json={"ids": [demo_dataset.ids[0]]})
    served = client.get("/v1/collections/tiny").json()
    assert served.pop("max_k") == 1000
    info = vecdial.connect(tiny_data_dir).open("tiny").info()
    assert (info.size, info.deleted) == (299, 1)
    assert served == json.loads(json.dumps(info.to_dict()))  # as JSON: tuples become lists, int keys strings
