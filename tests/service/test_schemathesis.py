"""Property-based fuzzing of our own OpenAPI schema with schemathesis, in process (ASGI).

Every operation gets valid (positive) and schema-violating (negative) requests, with
`{name}` both the real 'tiny' collection and generated names. Whatever is sent, no
response is a 5xx, every response has a documented status code, content type and body
shape, a request the schema calls invalid is refused, and a request it calls valid is
refused only for what no static schema can know (`STATE_REFUSALS`: the collection's dim
and id kind, the server's limits, the budget grammar). Bounded: MAX_EXAMPLES per operation
per mode, derandomized (the same cases every run); DELETE runs last so the collection
serves the other operations. Before the fixes it found 5xx on non-UTF-8 bodies and bad
uploads, and schema-valid requests refused for their shape (collection names, "exactly one
of vector / vector_b64 / text", ids of both kinds, `5.0` as an integer).
"""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import vecdial
from vecdial.service.app import create_app
from vecdial.service.settings import Settings

MAX_EXAMPLES = 15
# A sweep measures budgets for seconds per request, more on a loaded machine: fewer of them, and
# a client timeout well past what one takes (the in-process transport's default is 10 s).
SLOW_OPERATIONS = {"POST /v1/collections/{name}/sweep": 4}
CALL_TIMEOUT = 120
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, negative_data_rejection)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# What a schema-valid request may still be refused for (422), and why the schema cannot say it.
STATE_REFUSALS = {
    "dims": "a vector's length is the collection's dim",
    "this collection has": "ids (and `after` cursors) are of the collection's kind, int or str",
    "this server's": "k, batch sizes and text lengths are bounded by the server's settings",
    "for 1 vectors": "ids and texts come one per vector",
    " ids for ": "ids come one per item: a count relation between two fields",
    "vectors have different lengths": "the vectors of a create share one dim",
    "uploaded file": "an upload's bytes are a file the schema does not describe",
    "does not fit in 64 bits": "JSON Schema tools compare big integers as doubles, so 2**63 passes a maximum of 2**63-1",
    "not a whole number of": "a base64 array's length is a multiple of its `dim`: a relation between two fields",
    "the traffic sample holds": "a sweep on traffic needs queries the server has kept",
    "field name": "payload field names follow the rule the Payload schema's description states (a pattern with reserved words)",
    "payloads for": "payloads come one per item: a count relation between two fields",
    "input holds no vectors": "an upload's file must hold vectors: bytes the schema does not describe",
    "sparse codes are switched off but": "the sparse knobs mean something only with sparse codes on: a relation between two fields",
    "reads as a float": "the same, below the minimum: -2**63-1 passes as -2**63, and JSON parsers read it as that double",
}


@pytest.fixture
def api_schema(tiny_data_dir):
    vecdial.connect(tiny_data_dir).open("tiny").encode(["warm"])  # load the text model before any request waits on it
    app = create_app(Settings(data_dir=tiny_data_dir, log_level="error", max_upload_bytes=1 << 20))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def refused_for_its_shape(case, response) -> str | None:
    """Why a schema-valid request was refused although the schema allowed it, or None."""
    if response.status_code not in (400, 422):
        return None
    body = response.json()
    if body["error"] == "invalid_budget" or any(fragment in body["message"] for fragment in STATE_REFUSALS):
        return None  # budgets are a grammar over the modes each collection serves; the rest as STATE_REFUSALS says
    if all(part.startswith(("budget", "hybrid", "filter")) for part in body["message"].split("; ")):
        return None  # a hybrid or a filter, like a budget, is a grammar the schema gives the shape of only (filters: over each collection's fields)
    if "_b64" in body["message"] and "NaN or infinite" in body["message"]:
        return None  # random base64 bytes spell NaN as float32 now and then
    return f"{response.status_code} {body['message'][:300]} <- {str(case.body)[:200]}"


def fuzz(operation, mode: GenerationMode, path_parameters: dict | None, ran: Counter, failures: list, examples: int = MAX_EXAMPLES) -> None:
    @given(case=operation.as_strategy(mode, path_parameters=path_parameters))
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def one(case):
        ran[operation.label] += 1
        try:
            response = case.call(timeout=CALL_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the in-process transport re-raises what the app did not handle: a 500
            failures.append((operation.label, "unhandled", f"{type(exc).__name__}: {exc}"[:300]))
            return
        for check in CHECKS:
            try:
                case.validate_response(response, checks=[check])
            except BaseException as exc:  # noqa: BLE001 - any failed check (a group of failures, too), reported with the others
                failures.append((operation.label, check.__name__, f"{response.status_code} {str(exc)[:300]}"))
        if mode == GenerationMode.POSITIVE and (why := refused_for_its_shape(case, response)):
            failures.append((operation.label, "schema-valid request refused", why))

    try:
        one()
    except Unsatisfiable:  # e.g. no negative form of a bare path parameter
        pass


def test_no_generated_request_gets_a_5xx_an_undocumented_response_or_a_refusal_the_schema_does_not_explain(api_schema):
    operations = sorted((result.ok() for result in api_schema.get_all_operations()), key=lambda op: op.method.upper() == "DELETE")
    ran: Counter = Counter()
    failures: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warning on 1e308 sent as float32
        for operation in operations:
            names = [{"name": "tiny"}, None] if "{name}" in operation.path else [None]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for path_parameters in names:
                    fuzz(operation, mode, path_parameters, ran, failures, SLOW_OPERATIONS.get(operation.label, MAX_EXAMPLES))
    assert len(ran) == len(operations) >= 16 and sum(ran.values()) > 300, ran
    assert failures == [], "\n".join(map(str, failures))


def test_without_the_key_every_guarded_operation_answers_a_documented_401(make_client):
    client = make_client(api_key="s3cret")
    document = client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()
    guarded = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "security" in operation
    ]
    assert {path for path in document["paths"]} - {path for _, path, _ in guarded} == {"/healthz", "/readyz"}
    for method, template, operation in guarded:
        assert "401" in operation["responses"], (method, template)
        response = client.request(method.upper(), template.replace("{name}", "tiny").replace("{job_id}", "nope"))
        assert response.status_code == 401 and response.json()["error"] == "unauthorized", (method, template)


def test_an_undocumented_method_is_a_405_whose_allow_lists_every_documented_one(client):
    document = client.get("/openapi.json").json()
    for template, operations in document["paths"].items():
        path = template.replace("{name}", "tiny").replace("{job_id}", "nope")
        documented = {method.upper() for method in operations}
        expected = ", ".join(sorted(documented | ({"HEAD"} if "GET" in documented else set())))
        for method in set(METHODS) - documented:
            response = client.request(method, path)
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers["allow"] == expected, (method, path)
            assert response.json()["error"] == "method_not_allowed" and f"use {expected}" in response.json()["message"]


def test_the_openapi_document_states_the_rules_the_server_applies(client):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    name = next(p for p in document["paths"]["/v1/collections/{name}"]["get"]["parameters"] if p["name"] == "name")["schema"]
    assert (name["pattern"], name["maxLength"]) == (schemas["CreateCollectionRequest"]["properties"]["name"]["pattern"], 64)
    search = document["paths"]["/v1/collections/{name}/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert [branch["required"] for branch in search["oneOf"]] == [["vector"], ["vector_b64"], ["text"]]
    assert [branch["required"] for branch in schemas["BatchSearchRequest"]["oneOf"]] == [["queries"], ["vectors_b64", "dim"]]
    ids = schemas["CreateCollectionRequest"]["properties"]["ids"]["anyOf"]
    assert [option.get("items", {}).get("type") for option in ids] == ["integer", "string", None]  # one kind per collection
    assert "401" in document["paths"]["/metrics"]["get"]["responses"]


@pytest.mark.parametrize("name", ["a..b", "-lead", "x" * 65, "sp ace"])
def test_a_collection_name_outside_the_documented_pattern_is_a_422_in_the_path_and_in_a_create(client, inside, name):
    for response in (client.get(f"/v1/collections/{name}"), client.post("/v1/collections", json={"name": name, "vectors": inside[:2]})):
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith(f"invalid collection name {name!r}") or "64 characters" in response.json()["message"]


def test_a_whole_number_written_with_a_point_is_an_integer_as_json_schema_says(client, inside):
    response = client.post("/v1/collections/tiny/search", json={"vector": inside[0], "k": 3.0})
    assert response.status_code == 200 and len(response.json()["hits"]) == 3
