"""The HTTP bodies and the upload query take exactly BuildSettings' knobs, under the same names."""

import io

import numpy as np
import pytest

from vecdial.indexer.modes.settings import KNOBS, BuildSettings, SparseSettings


@pytest.fixture
def openapi(client) -> dict:
    return client.get("/openapi.json").json()


def schema(openapi: dict, ref: dict) -> dict:
    return openapi["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]


def body_schema(openapi: dict, path: str) -> dict:
    return schema(openapi, openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"])


def test_the_reindex_body_has_one_field_per_settings_knob(openapi):
    body = body_schema(openapi, "/v1/collections/{name}/reindex")
    assert list(body["properties"]) == ["min_recall", "budget", *BuildSettings.model_fields]  # the recall gate, then the knobs
    sparse = next(schema(openapi, option) for option in body["properties"]["sparse"]["anyOf"] if "$ref" in option)
    assert list(sparse["properties"]) == list(SparseSettings.model_fields)
    assert body["additionalProperties"] is False and sparse["additionalProperties"] is False


def test_the_knobs_keep_their_descriptions_and_ranges(openapi):
    body = body_schema(openapi, "/v1/collections/{name}/reindex")
    block = body["properties"]["block"]
    assert (block["minimum"], block["maximum"]) == (8, 1024)
    assert block["description"] == BuildSettings.model_fields["block"].description
    assert body["properties"]["dtype"]["enum"] == ["float32", "float16"]


def test_a_create_body_takes_the_same_settings_as_a_reindex(openapi):
    create = schema(openapi, body_schema(openapi, "/v1/collections")["properties"]["settings"])
    reindex = body_schema(openapi, "/v1/collections/{name}/reindex")
    assert create["properties"] == {k: v for k, v in reindex["properties"].items() if k not in ("min_recall", "budget")}


def test_the_upload_query_has_format_and_one_parameter_per_flat_knob(openapi):
    parameters = openapi["paths"]["/v1/collections/{name}/upload"]["post"]["parameters"]
    query = [p["name"] for p in parameters if p["in"] == "query"]
    assert query == ["format"] + [knob.name for knob in KNOBS]


def test_an_upload_takes_knobs_by_their_flat_names(client, outside):
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(outside, dtype=np.float32))
    response = client.post("/v1/collections/up/upload?format=npy&block=64&binary_center=true", content=buffer.getvalue())
    assert response.status_code == 201
    settings = response.json()["settings"]
    assert (settings["block"], settings["binary_center"], settings["sparse"]) == (64, True, None)


@pytest.mark.parametrize(
    "query, fragment",
    [("block=4", "block: Input should be greater than or equal to 8"), ("sparse_k=16", "sparse_k: Extra inputs are not permitted")],
)
def test_a_bad_upload_knob_is_refused_before_the_body_is_read(client, query, fragment):
    response = client.post(f"/v1/collections/up/upload?format=npy&{query}", content=b"never read")
    assert response.status_code == 422 and fragment in response.json()["message"]


def test_an_upload_with_a_sparse_knob_and_sparse_off_is_refused(client):
    response = client.post("/v1/collections/up/upload?format=npy&sparse=false&max_active=16", content=b"")
    assert response.status_code == 422 and "switched off but max_active given" in response.json()["message"]
