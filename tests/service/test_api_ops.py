"""Health, readiness, metrics, auth, settings, and the OpenAPI schema."""

import numpy as np
import pytest

import vecdial
from vecdial.service.settings import Settings

ROUTES = {
    ("get", "/v1/collections"),
    ("get", "/v1/collections/{name}/sweep"),
    ("post", "/v1/collections"),
    ("get", "/v1/collections/{name}"),
    ("get", "/v1/collections/{name}/ids"),
    ("get", "/v1/collections/{name}/features"),
    ("delete", "/v1/collections/{name}"),
    ("post", "/v1/collections/{name}/upload"),
    ("post", "/v1/collections/{name}/search"),
    ("post", "/v1/collections/{name}/search/batch"),
    ("post", "/v1/collections/{name}/vectors/upsert"),
    ("post", "/v1/collections/{name}/vectors/delete"),
    ("post", "/v1/collections/{name}/reindex"),
    ("post", "/v1/collections/{name}/sweep"),
    ("post", "/v1/collections/{name}/repair"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{job_id}"),
    ("post", "/v1/jobs/{job_id}/cancel"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "collections": 1, "broken": {}, "damaged": {}}


def test_metrics_expose_latency_by_mode_requests_errors_and_sizes(client, inside):
    client.post("/v1/collections/tiny/search", json={"vector": inside[0], "budget": {"mode": "dense", "dim": 64}})
    client.post("/v1/collections/tiny/search", json={"vector": [1.0]})
    client.post("/v1/collections/tiny/vectors/delete", json={"ids": ["nothing"]})
    text = client.get("/metrics").text
    assert 'vecdial_search_duration_seconds_bucket{le="0.005",mode="dense"}' in text
    assert 'vecdial_http_requests_total{method="POST",route="/v1/collections/{name}/search",status="200"}' in text
    assert 'vecdial_errors_total{error="invalid_input",route="/v1/collections/{name}/search"}' in text
    assert 'vecdial_collection_vectors{collection="tiny"} 300.0' in text
    assert 'vecdial_collection_version_info{collection="tiny",version="v000001"} 1.0' in text


def test_each_request_logs_one_json_line_with_its_fields(client, inside, caplog):
    import json
    import logging

    from vecdial.service.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="vecdial.access"):
        client.post("/v1/collections/tiny/search", json={"vector": inside[0], "budget": "binary:rescore=5"})
    record = next(r for r in caplog.records if r.name == "vecdial.access")
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/v1/collections/{name}/search" and line["status"] == 200
    assert (line["collection"], line["mode"], line["queries"]) == ("tiny", "binary", 1)
    assert line["level"] == "info" and line["ms"] > 0 and len(line["request_id"]) == 16


def test_with_an_api_key_v1_needs_the_bearer_token(make_client, inside):
    client = make_client(api_key="s3cret")
    search = {"vector": inside[0]}
    missing = client.post("/v1/collections/tiny/search", json=search)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["message"]
    wrong = client.post("/v1/collections/tiny/search", json=search, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.post("/v1/collections/tiny/search", json=search, headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json", "/v1/collections", "/v1/jobs", "/no/such/route"])
def test_with_an_api_key_every_path_but_the_probes_needs_it(make_client, path):
    client = make_client(api_key="s3cret")
    refused = client.get(path)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    allowed = client.get(path, headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == (404 if path == "/no/such/route" else 200)


def test_metrics_public_opens_only_metrics_to_a_scraper(make_client):
    client = make_client(api_key="s3cret", metrics_public=True)
    assert client.get("/metrics").status_code == 200 and "vecdial_http_requests" in client.get("/metrics").text
    assert client.get("/openapi.json").status_code == 401 and client.get("/v1/collections").status_code == 401


def test_the_key_is_checked_before_the_body_is_parsed(make_client):
    client = make_client(api_key="s3cret")
    malformed = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    assert client.post("/v1/collections/tiny/search", **malformed).status_code == 401
    assert client.post("/v1/collections/tiny/vectors/upsert", **malformed).status_code == 401
    authorized = {**malformed, "headers": {**malformed["headers"], "Authorization": "Bearer s3cret"}}
    assert client.post("/v1/collections/tiny/search", **authorized).status_code == 400


def test_settings_come_from_env_over_a_toml_file(tmp_path, monkeypatch):
    config = tmp_path / "vecdial.toml"
    config.write_text("max_k = 50\nmax_batch = 7\nlog_json = false\n")
    monkeypatch.setenv("VECDIAL_SETTINGS_FILE", str(config))
    monkeypatch.setenv("VECDIAL_MAX_BATCH", "9")
    settings = Settings()
    assert (settings.max_k, settings.max_batch, settings.log_json) == (50, 9, False)


def test_a_missing_settings_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VECDIAL_SETTINGS_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ValueError, match="does not exist"):
        Settings()


def damage_index(data_dir) -> None:
    blocks = data_dir / "tiny" / "versions" / "v000001" / "dense_blocks.npy"
    with open(blocks, "r+b") as handle:
        handle.truncate(1000)


def test_a_damaged_index_is_a_503_that_names_the_file_but_no_server_path(tiny_data_dir, make_client, inside):
    damage_index(tiny_data_dir)
    client = make_client()  # the startup preload logs the damage and keeps serving the rest
    response = client.post("/v1/collections/tiny/search", json={"vector": inside[0]})
    assert response.status_code == 503 and response.json()["error"] == "corrupt_index"
    assert "tiny/versions/v000001: file dense_blocks.npy" in response.json()["message"]
    assert str(tiny_data_dir) not in response.json()["message"]
    assert client.get("/healthz").status_code == 200


def damage_log(data_dir, client, vectors) -> None:
    """Six acknowledged upserts, then a flipped bit inside one of them."""
    for i in range(6):
        assert (
            client.post("/v1/collections/tiny/vectors/upsert", json={"items": [{"id": f"new{i}", "vector": vectors[i]}]}).status_code == 200
        )
    log = data_dir / "tiny" / "wal" / "v000001.log"
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x10
    log.write_bytes(bytes(data))


def test_readyz_and_describe_name_a_damaged_log_without_the_server_path(tiny_data_dir, make_client, outside):
    damage_log(tiny_data_dir, make_client(), outside)
    client = make_client()
    readiness, info = client.get("/readyz"), client.get("/v1/collections/tiny")
    for message in (readiness.json()["damaged"]["tiny"], info.json()["damaged"]):
        assert "its write-ahead log tiny/wal/v000001.log is damaged" in message
        assert str(tiny_data_dir) not in message and str(tiny_data_dir.resolve()) not in message


def test_readyz_drops_a_damaged_log_once_another_process_repaired_it(tiny_data_dir, make_client, outside):
    damage_log(tiny_data_dir, make_client(), outside)
    client = make_client()
    assert "tiny" in client.get("/readyz").json()["damaged"]
    report = vecdial.connect(tiny_data_dir).open("tiny").repair()  # its own handle, as `vecdial repair` in another process has
    assert report.repaired
    assert client.get("/readyz").json() == {"status": "ready", "collections": 1, "broken": {}, "damaged": {}}


def test_with_an_api_key_readyz_names_broken_collections_only_to_a_caller_with_the_key(tiny_data_dir, make_client):
    damage_index(tiny_data_dir)
    client = make_client(api_key="s3cret")
    anonymous = client.get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.json() == {
        "status": "degraded",
        "collections": 0,
        "broken": {},
        "damaged": {},
        "detail": "1 collection(s) cannot be opened, 0 have a damaged write-ahead log: send the API key to see which",
    }
    keyed = client.get("/readyz", headers={"Authorization": "Bearer s3cret"})
    assert keyed.status_code == 503 and "dense_blocks.npy" in keyed.json()["broken"]["tiny"]
    assert str(tiny_data_dir) not in keyed.text and "detail" not in keyed.json()


def test_unknown_routes_get_the_error_shape(client):
    response = client.get("/v2/anything")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_openapi_documents_every_endpoint_model_and_error(client):
    schema = client.get("/openapi.json").json()
    documented = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert documented == ROUTES
    search = schema["paths"]["/v1/collections/{name}/search"]["post"]
    assert {"400", "401", "404", "413", "422", "500", "503"} <= set(search["responses"])
    assert search["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert search["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SearchResponse")
    models = schema["components"]["schemas"]
    assert {"BatchSearchRequest", "SearchResponse", "Explain", "StageReport", "Job", "CollectionInfo", "ErrorBody"} <= set(models)
    assert "securitySchemes" not in schema["components"]  # this server has no API key


def test_openapi_documents_the_bearer_key_of_a_server_that_has_one(make_client):
    schema = make_client(api_key="s3cret").get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()
    assert schema["paths"]["/v1/collections/{name}/search"]["post"]["security"]
    assert schema["paths"]["/metrics"]["get"]["security"]
    assert "security" not in schema["paths"]["/healthz"]["get"] and "security" not in schema["paths"]["/readyz"]["get"]


def test_openapi_describes_every_field_of_a_search_request(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/collections/{name}/search"]["post"]["requestBody"]  # read by the route itself
    assert body["required"] and body["content"]["application/json"]["schema"]["title"] == "SearchRequest"
    single = body["content"]["application/json"]["schema"]["properties"]
    batch = schema["components"]["schemas"]["BatchSearchRequest"]["properties"]
    assert set(single) == {
        "vector",
        "vector_b64",
        "text",
        "k",
        "budget",
        "with_text",
        "filter",
        "with_payload",
        "hybrid",
        "steer",
        "explain_features",
    }
    vector = next(schema for schema in single["vector"]["anyOf"] if schema.get("type") == "array")
    packed = next(schema for schema in single["vector_b64"]["anyOf"] if schema.get("type") == "string")
    assert vector["items"]["type"] == "number" and vector["items"]["maximum"] == float(np.finfo(np.float32).max)
    assert "little-endian float32" in packed["description"]
    assert "binary:rescore=10" in single["budget"]["description"] and single["budget"]["default"] == "exact"
    assert set(batch) == {
        "queries",
        "vectors_b64",
        "dim",
        "texts",
        "k",
        "budget",
        "with_text",
        "filter",
        "with_payload",
        "hybrid",
        "steer",
        "explain_features",
    }
