"""Request and response bodies of the HTTP API, separate from how things are stored.

A budget is passed as sent (string or JSON form) to `vecdial.Collection.search`,
whose one parser serves the CLI, HTTP and Python alike. Vectors are validated as
whole arrays (`service.vectors`), sent as JSON lists or as base64 of
little-endian float32.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model, model_validator
from pydantic.fields import FieldInfo

from vecdial import BuildSettings, SparseSettings
from vecdial._internal import KNOBS, flat_changes
from vecdial.service.feature_schemas import ExplainFeaturesField, SharedFeatures, SteerField
from vecdial.service.json_types import (
    NOT_BLANK,
    NOT_NULL,
    ONE_ID_KIND,
    CollectionName,
    Id,
    Integer,
    NoBooleans,
    WholeNumber,
    exactly_one_of,
    one_form_of,
)
from vecdial.service.vectors import Vector, VectorB64

BudgetField = Annotated[
    str | dict[str, Any],
    NoBooleans,
    Field(
        description="What the query may spend, in the string form (`exact`, `dense:dim=64`, `binary:rescore=10`, "
        "`sparse:active=32,rescore=10`, `funnel:binary*40>128*10>full`, `auto:target_recall=0.95`) or the JSON form "
        '(`{"mode": "dense", "dim": 64}`). GET /v1/collections/{name} lists the modes a collection serves and '
        "each knob's range; an invalid budget is a 422 `invalid_budget` saying what to change.",
        examples=["binary:rescore=10", {"mode": "dense", "dim": 64}],
    ),
]


FilterField = Annotated[
    dict[str, Any] | None,
    Field(
        description='Keep only items whose payload matches: `{"field": value}` (equal), `{"field": {"in": [...]}}`, '
        '`{"field": {"range": {"gte": 1, "lt": 9}}}` (numbers, ISO 8601 datetimes), `{"and": [...]}`, `{"or": [...]}`, '
        '`{"not": {...}}`. Applied inside every stage of every budget, not after the top k; `explain.filter` says how. '
        "An unknown field or a value of the wrong type is a 422 `invalid_input`.",
        examples=[{"module": "os", "chars": {"range": {"lt": 300}}}],
    ),
]
HybridField = Annotated[
    dict[str, Any] | str | None,
    NoBooleans,
    Field(
        description='Fuse the budget\'s hits with BM25 over the stored texts (text queries only): `{"lexical": 0.3, "dense": 0.7}`, '
        '`"method": "weighted"` (z-score normalised scores, the default) or `"rrf"`; `{}` takes the measured default '
        "(dense 0.7 + lexical 0.3). Weights are shares of 1 (each 0..1): the signals left out among dense and lexical "
        'share the rest, so `{"lexical": 0.5}` is dense 0.5 + lexical 0.5. Scores are then fused scores; `explain.hybrid` '
        "shows the weights used.",
        examples=[{"lexical": 0.3}],
    ),
]
Payload = Annotated[
    dict[str, Any],
    Field(
        description="Field -> value: a string (keyword), an integer, a number, an ISO 8601 datetime or a list of strings. A field keeps one type per collection. "
        "Field names: 1-64 letters, digits, '_', '.' or '-', starting with a letter or '_', and not `and`, `or` or `not` (the filter language's words)."
    ),
]


MAX_DIM = 8192  # the library holds at most 8192 dims (max_create_dim is at most this)


class _Body(BaseModel):
    """A JSON request body: unknown fields refused, types strict (JSON true/false are not numbers,
    `"1"` is not a number, `1.5` is not an integer; `1.0` is, as in JSON Schema: `WholeNumber`)
    and numbers finite, as Python's API refuses them."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _QueryParameters(BaseModel):
    """Query parameters: strings on the wire, read as the field's type (`block=64`, `binary_center=true`)."""

    model_config = ConfigDict(extra="forbid")


class Query(_Body):
    """One query: a vector (as a list, or as base64 of float32), or a text encoded with the bundled model."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of(("vector",), ("vector_b64",), ("text",)))

    vector: Vector | None = None
    vector_b64: VectorB64 | None = None
    text: str | None = Field(None, min_length=1, pattern=NOT_BLANK, description="Only for collections built with the bundled text model.")

    @model_validator(mode="after")
    def _one_of(self) -> Query:
        if sum(value is not None for value in (self.vector, self.vector_b64, self.text)) != 1:
            raise ValueError("send exactly one of `vector`, `vector_b64` or `text`")
        return self


class SearchRequest(Query):
    k: Integer = Field(10, ge=1, description="Hits to return (up to the server's max_k).")
    budget: BudgetField = "exact"
    with_text: bool = Field(False, description="Include each hit's stored text.")
    filter: FilterField = None
    with_payload: bool = Field(False, description="Include each hit's payload.")
    hybrid: HybridField = None
    steer: SteerField = None
    explain_features: ExplainFeaturesField = False


class BatchSearchRequest(_Body):
    """Many queries under one budget: `queries`, or all vectors at once as `vectors_b64` with their `dim`."""

    model_config = ConfigDict(
        json_schema_extra=one_form_of((("queries",), ("vectors_b64", "dim", "texts")), (("vectors_b64", "dim"), ("queries",)))
    )

    queries: list[Query] | None = Field(None, min_length=1, description="Queries answered together (up to the server's max_batch).")
    vectors_b64: VectorB64 | None = Field(
        None, description="All query vectors as one (n, dim) row-major array: base64 of little-endian float32."
    )
    dim: Annotated[int, Field(ge=1, le=MAX_DIM), WholeNumber] | None = Field(
        None, description="The dim of the vectors in `vectors_b64` (the collection's dim)."
    )
    texts: list[str] | None = Field(
        None, min_length=1, description="With `vectors_b64`: the queries' texts, one per vector, for `hybrid`'s lexical signal."
    )
    k: Integer = Field(10, ge=1)
    budget: BudgetField = "exact"
    with_text: bool = False
    filter: FilterField = None
    with_payload: bool = False
    hybrid: HybridField = None
    steer: SteerField = None
    explain_features: ExplainFeaturesField = False

    @model_validator(mode="after")
    def _one_form(self) -> BatchSearchRequest:
        if (self.queries is None) == (self.vectors_b64 is None):
            raise ValueError("send exactly one of `queries` or `vectors_b64` (with `dim`)")
        if (self.vectors_b64 is None) != (self.dim is None):
            raise ValueError("send `dim` with `vectors_b64`, and only with it")
        if self.texts is not None and self.vectors_b64 is None:
            raise ValueError("send `texts` with `vectors_b64` only (queries sent as `text` carry their own)")
        return self


class Hit(BaseModel):
    id: Id
    score: float = Field(description="Similarity under the budget's last stage (cosine, or Hamming-based for binary without rescoring).")
    text: str | None = None
    payload: dict[str, Any] | None = Field(None, description="The item's payload, with `with_payload` (datetimes as ISO 8601 strings).")
    features: SharedFeatures = None


class StageReport(BaseModel):
    stage: str = Field(description="e.g. dense:dim=64, binary:bits=384, rescore:dim=384, segment, merge.")
    candidates: int = Field(description="Candidates this stage kept per query.")
    bytes_read: int = Field(description="Bytes of index data this stage read per query.")
    ms: float


class FilterReport(BaseModel):
    strategy: Literal["rows", "mask"] = Field(
        description="rows: few items matched, and just those were scored exactly; mask: every stage skipped the others inside its scan."
    )
    matched_rows: int = Field(description="Live items the filter kept.")
    ms: float


class Explain(BaseModel):
    budget: str = Field(description="The budget used, in string form.")
    version: str = Field(description="The index version that answered.")
    stages: list[StageReport]
    bytes_scanned: int = Field(description="Sum of bytes_read over stages, per query.")
    total_ms: float
    version_rows: int = Field(description="Live rows of the version searched.")
    segment_rows: int = Field(description="Live rows written since the version was built, searched too.")
    deleted_rows: int = Field(description="Version rows deleted or overwritten since it was built (never returned).")
    calibration: str | None = Field(
        None,
        description="For auto budgets: the chosen budget's calibrated recall@10, its 95% lower bound, latency and bytes, and the queries it was calibrated on.",
    )
    filter: FilterReport | None = Field(None, description="How the filter was applied, if one was given.")
    hybrid: dict[str, Any] | None = Field(
        None,
        description='For hybrid searches, the fusion used: `method` and `weights`, each signal\'s share (they sum to 1), e.g. {"method": "rrf", "weights": {"dense": 0.5, "lexical": 0.5}}.',
    )
    steer: list[dict[str, Any]] | None = Field(
        None, description="For steered searches, each steer key as resolved: `key`, `feature` (its id), `label`, `weight`."
    )
    per_query: list[dict[str, Any]] | None = Field(
        None,
        description="For auto budgets chosen per query, per query in order: `budget` it ran, its difficulty `bin` and centroid `margin`, and the recall@10 calibrated for such queries (`expected_recall`).",
    )
    shards: list[dict[str, Any]] | None = Field(
        None,
        description="A sharded collection's: per shard `shard` and its own `explain` and `ms`, or `missing` saying why it did not answer.",
    )
    partial: bool | None = Field(None, description="A sharded collection's: true when some shard did not answer (see `shards`).")


class SearchResponse(BaseModel):
    hits: list[Hit]
    explain: Explain


class BatchSearchResponse(BaseModel):
    results: list[list[Hit]] = Field(description="Hits per query, in request order.")
    explain: Explain


def _leave_out_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # a knob left out keeps its value; null is not a value


def _changes_model(name: str, doc: str, fields: dict[str, tuple[Any, FieldInfo]], base: type[BaseModel] = _Body) -> type[BaseModel]:
    """A model of knobs that may each be left out, typed and documented as the settings model has them.

    Read it with `model_dump(exclude_unset=True)`: only the knobs that were sent.
    """
    definitions = {
        knob: (
            Annotated[(annotation, *info.metadata, WholeNumber)],
            Field(None, description=info.description, json_schema_extra=_leave_out_default),
        )
        for knob, (annotation, info) in fields.items()
    }
    return create_model(name, __base__=base, __doc__=doc, __module__=__name__, **definitions)


SparseChanges = _changes_model(
    "SparseChanges",
    "Sparse code settings to change; any left out keep their current value (or the default).",
    {name: (info.annotation, info) for name, info in SparseSettings.model_fields.items()},
)


def _sparse_change(value: Any) -> Any:
    if isinstance(value, dict):
        return SparseChanges.model_validate(value)  # its errors keep their place: sparse.max_active
    if not isinstance(value, bool):
        raise ValueError("use false (no sparse codes), true, or an object of sparse settings")
    return value


_SPARSE_CHANGE = Field(
    description="Learned sparse codes for sparse:active=N budgets: true trains them (with the current settings, or the defaults), "
    "false drops them, an object changes some of their settings (and turns them on).",
)


class _SettingsChanges(_Body):
    def changes(self) -> dict[str, Any]:
        """The knobs sent, as `BuildSettings.changed` takes them."""
        return self.model_dump(exclude_unset=True)


_SETTINGS_FIELDS = {
    name: (Annotated[SparseChanges | bool, BeforeValidator(_sparse_change)], _SPARSE_CHANGE)
    if name == "sparse"
    else (info.annotation, info)
    for name, info in BuildSettings.model_fields.items()
}
SettingsChanges = _changes_model(
    "SettingsChanges",
    "Compression settings to change; any left out keep their current value (or the default, for a new collection).",
    _SETTINGS_FIELDS,
    base=_SettingsChanges,
)


class _ReindexRequest(_SettingsChanges):
    min_recall: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Swap the new version in only if the gate budget's recall@10 (95% lower bound, measured on stored documents) meets this.",
    )
    budget: str | None = Field(None, description="The budget the recall gate measures (string form); default binary:rescore=10.")

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"min_recall", "budget"})


ReindexRequest = _changes_model(
    "ReindexRequest",
    "Compression settings to change (any left out keep their current value), and an optional recall gate.",
    _SETTINGS_FIELDS,
    base=_ReindexRequest,
)


class _UploadOptions(_QueryParameters):
    format: Literal["npy", "fvecs", "parquet", "jsonl"] = Field(description="npy, fvecs, parquet (a `vector` column) or jsonl (texts).")

    def changes(self) -> dict[str, Any]:
        """The knobs sent, as `BuildSettings.changed` takes them."""
        return flat_changes(self.model_dump(exclude_unset=True, exclude={"format"}))


UploadOptions = _changes_model(
    "UploadOptions",
    "Query parameters of an upload: the file's format, and compression settings under their flat (CLI) names; defaults if left out.",
    {knob.name: (knob.annotation, knob.info) for knob in KNOBS},
    base=_UploadOptions,
)


_CREATE_FORMS = one_form_of(
    (("vectors",), ("vectors_b64", "dim")),
    (("vectors_b64", "dim"), ("vectors",)),
    (("texts",), ("vectors", "vectors_b64", "dim")),
)
# texts given alone are encoded: each one text with a character that is not whitespace
_CREATE_FORMS["oneOf"][2]["properties"]["texts"] = {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": NOT_BLANK}}


class CreateCollectionRequest(_Body):
    """One of three forms: `vectors` (a list per item), `vectors_b64` with `dim`, or `texts` alone
    (encoded with the bundled model); texts may come with vectors too."""

    model_config = ConfigDict(json_schema_extra=_CREATE_FORMS)
    name: CollectionName
    vectors: list[Vector] | None = Field(
        None, min_length=1, description="One list per item; or `vectors_b64` with `dim`, or `texts` alone to encode."
    )
    vectors_b64: VectorB64 | None = Field(
        None, description="Every vector as one (n, dim) row-major array: base64 of little-endian float32."
    )
    dim: Annotated[int, Field(ge=1, le=MAX_DIM), WholeNumber] | None = Field(
        None, description="The dim of the vectors in `vectors_b64`, and only with it."
    )
    ids: Annotated[list[Id] | None, WithJsonSchema(ONE_ID_KIND)] = Field(
        None, description="One per vector, all integers or all strings; default 0..n-1."
    )
    texts: list[str | None] | None = Field(None, description="Optional text per vector, returned with hits.")
    payloads: list[Payload | None] | None = Field(None, description="Optional payload per vector, for filters and `with_payload`.")
    source_model: str | None = Field(None, description="Model that made the vectors; the bundled model's name enables text queries.")
    settings: SettingsChanges = Field(default_factory=SettingsChanges, description="Compression settings; defaults for any left out.")
    replace: bool = Field(
        False, description="Build a new version over an existing collection of that name (409 while it holds writes since its version)."
    )
    discard_writes: bool = Field(
        False, description="With `replace`: drop the writes acknowledged since the old version instead of refusing."
    )

    @model_validator(mode="after")
    def _one_form(self) -> CreateCollectionRequest:
        if self.vectors is not None and self.vectors_b64 is not None:
            raise ValueError("send `vectors` or `vectors_b64` (with `dim`), not both")
        if (self.vectors_b64 is None) != (self.dim is None):
            raise ValueError("send `dim` with `vectors_b64`, and only with it")
        return self


class UpsertItem(_Body):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": [field], "properties": {field: NOT_NULL}} for field in ("vector", "text")]}
    )

    id: Id
    vector: Vector | None = Field(None, description="Leave out to encode `text` with the bundled model.")
    text: str | None = Field(None, min_length=1, pattern=NOT_BLANK, description="Stored with the vector; encoded if no vector is given.")
    payload: Payload | None = Field(None, description="Stored with the vector (replacing the old item's payload).")

    @model_validator(mode="after")
    def _needs_content(self) -> UpsertItem:
        if self.vector is None and self.text is None:
            raise ValueError("each item needs a `vector`, or a `text` to encode")
        return self


class UpsertRequest(_Body):
    items: list[UpsertItem] = Field(min_length=1, description="Up to the server's max_write_batch; an id already present is replaced.")


class DeleteRequest(_Body):
    ids: list[Id] = Field(min_length=1, description="Ids to delete; ids not present are ignored.")


class WriteResponse(BaseModel):
    upserted: int
    deleted: int = Field(description="Ids that existed and are now gone.")
    size: int = Field(description="Live vectors in the collection after the write.")
    version: str
