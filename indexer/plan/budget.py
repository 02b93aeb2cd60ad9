"""Budgets: what one query may spend, in one form for the CLI, HTTP and Python.

The string form (`dense:dim=64`, `binary:rescore=10,probe=16`, `sparse:active=32,rescore=10`,
`funnel:binary*40>128*10>full,probe=0.05`, `auto:target_recall=0.95`) and the JSON form
(`{"mode": "dense", "dim": 64}`) parse to the same frozen pydantic models. The
modes come from the registry (`indexer.modes`); `funnel` and `auto` compose them.
A lone number after the colon sets the mode's first knob (`dense:64`, `binary:20`).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from vecdial.indexer.errors import BudgetError, first_problem
from vecdial.indexer.modes import MODES, RESCORER, STAGE_KINDS
from vecdial.indexer.modes.knobs import MAX_RESCORE, BudgetModel, FunnelStage, probe_field

__all__ = ["MAX_RESCORE", "AutoBudget", "Budget", "FunnelBudget", "FunnelStage", "format_budget", "parse_budget"]

# Modes that find candidates and so may head a funnel stage (exact is `full`).
_STAGE_KINDS = STAGE_KINDS


class FunnelBudget(BudgetModel):
    """Adaptive retrieval: a cheap shortlist, then dense rescoring at growing dims."""

    mode: Literal["funnel"] = "funnel"
    stages: tuple[FunnelStage, ...] = Field(min_length=1, max_length=8)
    probe: int | float | None = probe_field()

    @field_validator("stages", mode="before")
    @classmethod
    def _known_kinds(cls, stages: Any) -> Any:
        """Each stage's kind is a registered mode that finds candidates, sized by that mode's knob alone."""
        return (
            [_stage_of_mode(stage) if isinstance(stage, dict) else stage for stage in stages]
            if isinstance(stages, list | tuple)
            else stages
        )


_SIZE: TypeAdapter = TypeAdapter(Annotated[int, Field(gt=0)])


def _stage_of_mode(stage: dict) -> dict:
    """A funnel stage's JSON form checked against its mode: a known kind, and its size (if any)
    under the mode's knob, a whole number > 0."""
    kind = stage.get("kind")
    if kind not in _STAGE_KINDS:
        raise ValueError(f"unknown stage kind {kind!r}: use one of {', '.join(_STAGE_KINDS)}")
    knob = MODES[kind].knob
    checked = dict(stage)
    for key in set(stage) - {"kind", "keep"}:
        if key != knob:
            takes = f"{knob} and keep" if knob else "keep"
            raise ValueError(f"a {kind} stage has no knob {key!r}: it takes {takes}")
        try:
            checked[key] = _SIZE.validate_python(stage[key])
        except ValidationError:
            raise ValueError(f"{key}={stage[key]!r} is not valid: use a whole number > 0") from None
    return checked


class AutoBudget(BudgetModel):
    """The fastest swept budget whose recall@10 lower bound meets the target within the limits
    given (needs `vecdial sweep`)."""

    mode: Literal["auto"] = "auto"
    target_recall: float = Field(
        0.95, gt=0, le=1, description="Recall@10 against exact search to reach (its 95% lower bound over the calibration queries)."
    )
    max_latency_ms: float | None = Field(None, gt=0, description="Calibrated one-query latency allowed, ms.")
    max_bytes_per_vector: float | None = Field(None, gt=0, description="Index bytes read per stored vector allowed.")
    per_query: int | None = Field(
        None,
        ge=1,
        le=1,
        description="1: choose the budget per query by its difficulty (needs a sweep with bins, on a partitioned collection); measured no faster yet than one budget for all on the bundled sets.",
    )


_MODELS = tuple(mode.budget for mode in MODES.values()) + (FunnelBudget, AutoBudget)
Budget = Annotated[Union[_MODELS], Field(discriminator="mode")]  # type: ignore[valid-type]  # noqa: UP007 - a tuple built at import: no | form
_ADAPTER: TypeAdapter = TypeAdapter(Budget)
_BY_MODE = {model.model_fields["mode"].default: model for model in _MODELS}


def parse_budget(spec: str | dict | BudgetModel) -> Any:
    """Parse a budget from its string form, its JSON form or a model (returned as is)."""
    if isinstance(spec, BudgetModel):
        return spec
    if isinstance(spec, str):
        return _parse_string(spec)
    return _validate(spec, spec)


@lru_cache(maxsize=1024)
def _parse_string(spec: str) -> Any:
    """Strings repeat (every HTTP search names its budget): each is parsed once per process."""
    return _validate(_string_to_dict(spec), spec)


def _validate(data: Any, spec: Any) -> Any:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise BudgetError(f"invalid budget {spec!r}: {_in_our_words(exc)}") from None


def _in_our_words(exc: ValidationError) -> str:
    """The first problem, saying what to write instead where pydantic's words would not:
    an unknown mode or knob names the ones that exist (and the nearest, for a typo)."""
    first = exc.errors()[0]
    if first["type"] == "union_tag_invalid":
        mode = str(first["ctx"]["tag"])
        return f"unknown mode {mode!r}{_did_you_mean(mode, _BY_MODE)}: use one of {', '.join(_BY_MODE)}"
    if first["type"] == "extra_forbidden" and len(first["loc"]) == 2 and first["loc"][0] in _BY_MODE:
        mode, knob = map(str, first["loc"])
        knobs = [name for name in _BY_MODE[mode].model_fields if name != "mode"]
        takes = f"it takes {', '.join(knobs)}" if knobs else "it takes no knobs"
        return f"{mode} has no knob {knob!r}{_did_you_mean(knob, knobs)}: {takes}"
    return first_problem(exc, "budget")


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_budget(budget: BudgetModel) -> str:
    """The string form of a budget, as accepted by parse_budget."""
    if isinstance(budget, FunnelBudget):
        probe = f",probe={budget.probe}" if budget.probe is not None else ""
        return "funnel:" + ">".join(_format_stage(s) for s in budget.stages) + probe
    knobs = budget.model_dump(exclude={"mode"}, exclude_none=True)
    if not knobs:
        return budget.mode  # type: ignore[attr-defined]
    return f"{budget.mode}:" + ",".join(f"{key}={value}" for key, value in knobs.items())  # type: ignore[attr-defined]


def _string_to_dict(spec: str) -> dict:
    mode, _, rest = spec.strip().partition(":")
    if mode == "funnel":  # funnel:binary*40>128*10>full[,probe=16]
        stages, *options = rest.split(",")
        return {"mode": "funnel", "stages": [_parse_stage(s) for s in stages.split(">") if s], **_knobs(options, spec)}
    knobs: dict[str, object] = {"mode": mode}
    model = _BY_MODE.get(mode)
    if rest.strip().replace(".", "", 1).isdigit() and model is not None:
        first = [name for name in model.model_fields if name != "mode"]
        if first:
            knobs[first[0]] = _number(rest.strip(), spec, rest)
            return knobs
    return {**knobs, **_knobs(rest.split(","), spec)}


def _knobs(items: list[str], spec: str) -> dict[str, int | float]:
    knobs = {}
    for item in filter(None, items):
        key, sep, value = item.partition("=")
        if not sep:
            raise BudgetError(f"invalid budget {spec!r}: expected key=number, got {item!r}")
        knobs[key.strip()] = _number(value.strip(), spec, item)
    return knobs


def _number(value: str, spec: str, item: str) -> int | float:
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        raise BudgetError(f"invalid budget {spec!r}: expected key=number, got {item!r}") from None


def _parse_stage(token: str) -> dict:
    """`binary*40`, `sparse32*20`, `128*10`, `full`: a mode and its size, then `*keep`."""
    head, _, keep = token.strip().partition("*")
    stage: dict[str, object] = {}
    if keep:
        if not keep.isdigit():
            raise BudgetError(f"invalid funnel stage {token!r}: keep must be an integer")
        stage["keep"] = int(keep)
    kind = head.rstrip("0123456789")
    size = head[len(kind) :]
    if head == "full":
        stage["kind"] = RESCORER
    elif not kind and size:
        stage.update({"kind": RESCORER, str(MODES[RESCORER].knob): int(size)})
    elif kind in _STAGE_KINDS and (not size or MODES[kind].knob):
        stage["kind"] = kind
        knob = MODES[kind].knob
        if size and knob:  # a size is taken only by a mode with a size knob (the test above)
            stage[knob] = int(size)
    else:
        raise BudgetError(
            f"invalid funnel stage {token!r}: use {', '.join(k for k in _STAGE_KINDS if k != RESCORER)}, a mode with its size (sparse32), a dim, or full"
        )
    return stage


def _format_stage(stage: FunnelStage) -> str:
    size = stage.size(MODES[stage.kind].knob)
    if stage.kind == RESCORER:
        head = str(size) if size else "full"
    else:
        head = f"{stage.kind}{size or ''}"
    return f"{head}*{stage.keep}" if stage.keep else head
