"""The one settings model of a build: what Python, the HTTP bodies, the upload query,
the CLI flags and the manifest all use.

A knob has one name everywhere: `BuildSettings(rotation=...)`, `{"rotation": ...}`
in an HTTP body, `--rotation` on the command line. The sparse code size is
`max_active` (`--max-active`): the ceiling of the `active` budget knob, so any
`sparse:active=N` with N <= max_active is served from one index.

Partial changes (a reindex, a create that sets a few knobs) go through
`BuildSettings.changed`, the one place they are validated. `KNOBS` lists every
knob under its flat name, for the interfaces that cannot nest (CLI flags, query
parameters): the sparse fields keep their own names, except where one would
collide with a build field (`sparse_seed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from vecdial.indexer.errors import CorruptIndex, InvalidInput


class RecordedBuild(Protocol):
    """What a version's manifest records of its build (`disk/manifest.py`'s `Manifest` is one):
    settings sit below the disk, which opens versions through the modes that read them."""

    codecs: dict[str, dict[str, Any]]
    lexical: dict[str, Any] | None
    has_texts: bool
    partitions: int


# Old names of sparse settings, accepted when reading a manifest written before the rename.
RENAMED_SPARSE = {"k": "max_active"}


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SparseSettings(_Settings):
    """Knobs of the learned sparse codes (CSR autoencoder); the training knobs keep their measured defaults."""

    max_active: int = Field(32, ge=1, le=1024, description="Active units per code: any sparse:active=N with N <= max_active is served.")
    hidden_mult: int = Field(8, ge=1, le=64, description="Code width as a multiple of the dim.")
    # 8 epochs with a light distillation term measured best within the time budget
    # (117k MiniLM vectors, 32 units: recall@10 0.56 vs 0.41 with coefficient 1.0).
    max_epochs: int = Field(8, ge=1, description="Training epochs (more for small collections, see min_steps).")
    contrastive_coef: float = Field(0.1, ge=0, description="Weight of the distillation term in training.")
    # Balanced unit usage: 7x fewer postings read at 32 units for 0.02 recall@10 (117k WordNet).
    flops_coef: float = Field(0.05, ge=0, description="Weight of the balanced-usage (FLOPS) penalty in training.")
    train_size: int = Field(200_000, ge=1, description="Vectors the codes are trained on, at most.")
    # Small collections get more epochs, up to this many optimizer steps in all: on the
    # 2k-document demo, 8 epochs (16 steps) left 41% of units dead and sparse-32
    # recall@10 at 0.34; 60 epochs gave 0.55 (dense-32: 0.55) in 50 s.
    min_steps: int = Field(120, ge=0, description="Optimizer steps at least: small collections train for more epochs.")
    time_limit_s: float = Field(540.0, gt=0, description="Training time limit in seconds.")
    seed: int = Field(0, ge=0, description="Seed of the training sample and the model's initialization.")


class BuildSettings(_Settings):
    """How a version is compressed. Defaults are what measured best on the demo data."""

    rotation: Literal["pca", "identity"] = Field(
        "pca", description="pca: a learned rotation that makes prefixes of any model good low-dim summaries; identity: plain truncation."
    )
    block: int = Field(32, ge=8, le=1024, description="Dims per column block of the dense store.")
    dtype: Literal["float32", "float16"] = Field("float32", description="Precision of the full-vector store.")
    # Measured slightly worse than sign bits on the demo, so off by default.
    binary_center: bool = Field(False, description="Binarize around per-dim medians instead of zero.")
    binary_index: Literal["flat", "hnsw"] = Field("flat", description="FAISS index for the Hamming shortlist.")
    rabitq: bool = Field(True, description="Keep RaBitQ codes (56 bytes a vector at 384 dims) for rabitq:rescore=R budgets.")
    # Opt-in, measured (bench/peers_bench.py, WordNet 117k, one search thread): the graph does not
    # give the fastest setting at R@10 >= 0.95. With 16 links, 0.951 needs ef=512 (185 QPS against
    # binary:rescore=20's 613); with 32, rescore=10,ef=256 reaches 0.964 at 492 QPS against 662,
    # and the build (102 s) is 2.0x the fastest peer index's (IVF-RaBitQ-FastScan, 51 s). 32 links
    # do give the fastest setting at 0.90 (rescore=5,ef=64: 1,065 QPS against 798). Linking also
    # costs 2 x graph x 4 bytes a row of links on disk.
    graph: int = Field(
        0,
        ge=0,
        le=64,
        description="Links a row keeps in an HNSW graph over the RaBitQ codes (HNSW's M; 16 is typical), for rabitq:rescore=R,ef=E budgets that reach high recall on any queries; 0: no graph. Needs rabitq.",
    )
    lexical: bool = Field(
        True, description="Index the texts for BM25, so queries can fuse lexical and dense results (hybrid); needs the lexical extra."
    )
    partitions: int | None = Field(
        None,
        ge=0,
        le=65_536,
        description="k-means cells the rows are stored in, so budgets with `probe` read only the cells near each query; unset: 2 sqrt(n) (none below 1,024 rows); 0: none.",
    )
    sample_size: int = Field(50_000, ge=100, description="Vectors the codecs are fitted on.")
    batch_size: int = Field(8192, ge=1, description="Vectors encoded per batch (memory use, not results).")
    seed: int = Field(0, ge=0, description="Seed of the sample the codecs are fitted on.")
    sparse: SparseSettings | None = Field(None, description="Learned sparse codes, for sparse:active=N budgets.")

    def changed(self, changes: Mapping[str, Any]) -> BuildSettings:
        """These settings with `changes` applied, validated; InvalidInput naming the knob and what to use.

        changes: knob -> new value; knobs left out keep their value. `sparse` takes
        False or None (no sparse codes), True (sparse codes with the current sparse
        settings, or the defaults), a dict of SparseSettings knobs applied over the
        current ones (or the defaults), or a SparseSettings.
        """
        if not isinstance(changes, Mapping):
            raise InvalidInput(f"settings must be an object of knobs ({', '.join(BuildSettings.model_fields)}), got {changes!r}")
        data: dict[str, Any] = {**dict(self), **changes}
        if "sparse" in changes:
            data["sparse"] = _sparse_changed(self.sparse, changes["sparse"])
        try:
            return BuildSettings.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput("; ".join(_describe(error) for error in exc.errors()[:3])) from None


def recorded_sparse(recorded: Any) -> SparseSettings | None:
    """The sparse settings a manifest records (None: none). A manifest written before the
    rename names max_active `k`; both are read."""
    if not isinstance(recorded, dict):
        return None
    renamed = {RENAMED_SPARSE.get(key, key): value for key, value in recorded.items()}
    try:
        return SparseSettings.model_validate(renamed)
    except ValidationError as exc:
        raise CorruptIndex(f"manifest sparse settings: {_describe(exc.errors()[0])}; rebuild the index") from None


def _sparse_changed(base: SparseSettings | None, change: Any) -> Any:
    """The new `sparse` value, for BuildSettings.model_validate to check."""
    if change is None or change is False:
        return None
    if change is True:
        return base or SparseSettings()
    if isinstance(change, SparseSettings):
        return change
    if isinstance(change, Mapping):
        return {**(dict(base) if base is not None else {}), **change}
    raise InvalidInput(f"sparse={change!r} is not valid: use false (no sparse codes), true, or an object of sparse settings")


def _describe(error: Any) -> str:
    """One pydantic error as `knob=value is not valid: what to use`."""
    where = ".".join(str(part) for part in error["loc"])
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        nested = len(error["loc"]) > 1 and error["loc"][0] == "sparse"
        model, name = (SparseSettings, "sparse setting") if nested else (BuildSettings, "setting")
        knob = str(error["loc"][-1])
        renamed = f" ({knob} is now {RENAMED_SPARSE[knob]})" if nested and knob in RENAMED_SPARSE else ""
        return f"unknown {name} {knob}{renamed}: use {', '.join(model.model_fields)}"
    use = {
        "literal_error": lambda: f"use {ctx.get('expected')}",
        "greater_than_equal": lambda: f"use a value >= {ctx.get('ge')}",
        "greater_than": lambda: f"use a value > {ctx.get('gt')}",
        "less_than_equal": lambda: f"use a value <= {ctx.get('le')}",
        "less_than": lambda: f"use a value < {ctx.get('lt')}",
    }.get(kind, lambda: error["msg"][:1].lower() + error["msg"][1:])()
    return f"{where}={error['input']!r} is not valid: {use}"


@dataclass(frozen=True)
class Knob:
    """One knob under its flat name: `--max-active` on the command line, `max_active` in a query."""

    name: str  # the flat name
    field: str  # its field in BuildSettings, or in SparseSettings when `sparse` is set
    sparse: bool
    info: FieldInfo
    annotation: Any  # the flat type: `sparse` itself is an on/off switch here

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _knobs() -> tuple[Knob, ...]:
    knobs = []
    for name, info in BuildSettings.model_fields.items():
        knobs.append(Knob(name, name, False, info, bool if name == "sparse" else info.annotation))
    for name, info in SparseSettings.model_fields.items():
        flat = f"sparse_{name}" if name in BuildSettings.model_fields else name
        knobs.append(Knob(flat, name, True, info, info.annotation))
    return tuple(knobs)


KNOBS: tuple[Knob, ...] = _knobs()


def flat_changes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flat knobs (name -> value; None or absent: not given) as the changes `changed` takes.

    A sparse knob given turns sparse codes on; giving one with sparse=False is refused.
    """
    knobs = {knob.name: knob for knob in KNOBS}
    unknown = sorted(set(values) - set(knobs))
    if unknown:
        raise InvalidInput(f"unknown setting(s) {', '.join(unknown)}: use {', '.join(knobs)}")
    given = {name: value for name, value in values.items() if value is not None}
    changes = {knobs[name].field: value for name, value in given.items() if not knobs[name].sparse}
    sparse = {knobs[name].field: value for name, value in given.items() if knobs[name].sparse}
    if sparse and changes.get("sparse") is False:
        names = ", ".join(name for name in given if knobs[name].sparse)
        raise InvalidInput(f"sparse codes are switched off but {names} given: drop them, or leave sparse on")
    if sparse:
        changes["sparse"] = sparse
    return changes
