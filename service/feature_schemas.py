"""Request fields and response bodies of the features: steering and explaining a search by the
sparse autoencoder's labelled units, and browsing them (GET /v1/collections/{name}/features)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

SteerField = Annotated[
    dict[str, Any] | None,
    Field(
        description="Move the query toward (weight > 0) or away from (< 0) features of the collection's sparse autoencoder, "
        'named by id or by words of their label: `{"1304": 0.5, "json": 0.3}`. A weight is the length added along the '
        "feature to the unit query, |weight| <= 2: up to 0.5 mostly reorders the hits, 1 replaces about half, 2 most. Needs sparse codes (build with "
        "`--sparse`); GET /v1/collections/{name}/features lists the features. A bad steer is a 422 `invalid_input`.",
        examples=[{"json": 0.5}],
    ),
]
ExplainFeaturesField = Annotated[
    bool,
    Field(
        description="Add `features` to each hit: the top 5 sparse features it shares with the (steered) query, labelled, "
        "largest contribution first. Off by default: it costs a sparse encoding of the query and a read of its postings. Needs sparse codes."
    ),
]


class SharedFeature(BaseModel):
    feature: int = Field(description="The feature's id: what `steer` names and GET .../features lists.")
    label: str = Field(description="Distinctive words of the feature's top documents (empty for a collection built without texts).")
    contribution: float = Field(description="The query's activation times the hit's: what this feature adds to their code inner product.")


SharedFeatures = Annotated[
    list[SharedFeature] | None,
    Field(None, description="With `explain_features`: the features this hit shares with the query, largest contribution first."),
]


class FeatureDocument(BaseModel):
    id: int | str
    text: str | None = Field(description="The item's text, cut to 160 characters.")
    activation: float = Field(description="How strongly the item activates the feature.")


class Feature(BaseModel):
    id: int = Field(description="What `steer` and `explain_features` name.")
    label: str = Field(description="Its terms joined: the distinctive words of its top documents (class-based TF-IDF).")
    terms: list[str]
    frequency: float = Field(description="Share of the version's items the feature is active in.")
    documents: list[FeatureDocument] = Field(description="Its top-activating live items, best first.")


class FeatureList(BaseModel):
    features: list[Feature]
