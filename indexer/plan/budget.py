"""Budgets: what one query may spend, in one form for the CLI, HTTP and Python.

The string form (`dense:dim=64`, `binary:rescore=10`, `sparse:active=32,rescore=10`,
`funnel:binary*40>128*10>full`, `auto:target_recall=0.95`) and the JSON form (`{"mode": "dense", "dim": 64}`)
parse to the same pydantic models.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from vecdial.indexer.errors import BudgetError

MAX_RESCORE = 1000


class _Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExactBudget(_Budget):
    """Every dim of every vector: the reference other budgets are measured against."""

    mode: Literal["exact"] = "exact"


class DenseBudget(_Budget):
    """Cosine over the first `dim` (rotated) dims: cost and bytes read follow `dim`."""

    mode: Literal["dense"] = "dense"
    dim: int = Field(gt=0, description="Leading dims to score with.")


class BinaryBudget(_Budget):
    """Hamming shortlist of k x rescore codes, rescored with full vectors (0: no rescoring)."""

    mode: Literal["binary"] = "binary"
    rescore: int = Field(10, ge=0, le=MAX_RESCORE, description="Shortlist size as a multiple of k.")


class SparseBudget(_Budget):
    """Inverted-index search with the query's top `active` sparse units."""

    mode: Literal["sparse"] = "sparse"
    active: int = Field(gt=0, description="Active units used per query and per document.")
    rescore: int = Field(0, ge=0, le=MAX_RESCORE, description="Shortlist multiple of k rescored with full vectors.")


class FunnelStage(_Budget):
    """One stage of a funnel: `binary`, `sparse` (with `active`) or `dense` (with `dim`)."""

    kind: Literal["binary", "dense", "sparse"]
    dim: int | None = Field(None, gt=0, description="Dims for a dense stage; default all.")
    active: int | None = Field(None, gt=0, description="Active units for a sparse stage.")
    keep: int | None = Field(None, gt=0, le=MAX_RESCORE, description="Candidates kept, as a multiple of k; the last stage keeps k.")


class FunnelBudget(_Budget):
    """Adaptive retrieval: a cheap shortlist, then dense rescoring at growing dims."""

    mode: Literal["funnel"] = "funnel"
    stages: list[FunnelStage] = Field(min_length=1, max_length=8)


class AutoBudget(_Budget):
    """The cheapest budget whose measured recall@10 meets the target (needs `vecdial sweep`)."""

    mode: Literal["auto"] = "auto"
    target_recall: float = Field(0.95, gt=0, le=1, description="Recall@10 against exact search to reach.")


Budget = Annotated[
    Union[ExactBudget, DenseBudget, BinaryBudget, SparseBudget, FunnelBudget, AutoBudget],
    Field(discriminator="mode"),
]
_ADAPTER: TypeAdapter[Budget] = TypeAdapter(Budget)


def parse_budget(spec: str | dict | _Budget) -> Budget:
    """Parse a budget from its string form, its JSON form or a model (returned as is)."""
    if isinstance(spec, _Budget):
        return spec  # type: ignore[return-value]
    try:
        data = _string_to_dict(spec) if isinstance(spec, str) else spec
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "budget"
        raise BudgetError(f"invalid budget {spec!r}: {where}: {first['msg']}") from None


def format_budget(budget: Budget) -> str:
    """The string form of a budget, as accepted by parse_budget."""
    if isinstance(budget, FunnelBudget):
        return "funnel:" + ">".join(_format_stage(s) for s in budget.stages)
    knobs = budget.model_dump(exclude={"mode"})
    if not knobs:
        return budget.mode
    return f"{budget.mode}:" + ",".join(f"{key}={value}" for key, value in knobs.items())


def _string_to_dict(spec: str) -> dict:
    mode, _, rest = spec.strip().partition(":")
    if mode == "funnel":
        return {"mode": "funnel", "stages": [_parse_stage(s) for s in rest.split(">") if s]}
    if mode == "dense" and rest.isdigit():
        return {"mode": "dense", "dim": int(rest)}
    knobs: dict[str, object] = {"mode": mode}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        try:
            number = float(value) if "." in value else int(value)
        except ValueError:
            raise BudgetError(f"invalid budget {spec!r}: expected key=number, got {item!r}") from None
        if not sep:
            raise BudgetError(f"invalid budget {spec!r}: expected key=number, got {item!r}")
        knobs[key.strip()] = number
    return knobs


def _parse_stage(token: str) -> dict:
    """`binary*40`, `sparse32*20`, `128*10`, `full`: kind/size, then `*keep`."""
    head, _, keep = token.strip().partition("*")
    stage: dict[str, object] = {}
    if keep:
        if not keep.isdigit():
            raise BudgetError(f"invalid funnel stage {token!r}: keep must be an integer")
        stage["keep"] = int(keep)
    if head == "binary":
        stage["kind"] = "binary"
    elif head == "full":
        stage["kind"] = "dense"
    elif head.startswith("sparse") and head[6:].isdigit():
        stage.update(kind="sparse", active=int(head[6:]))
    elif head.isdigit():
        stage.update(kind="dense", dim=int(head))
    else:
        raise BudgetError(f"invalid funnel stage {token!r}: use binary, sparseN, a dim, or full")
    return stage


def _format_stage(stage: FunnelStage) -> str:
    head = {"binary": "binary", "sparse": f"sparse{stage.active}", "dense": str(stage.dim) if stage.dim else "full"}[stage.kind]
    return f"{head}*{stage.keep}" if stage.keep else head
