"""The partner event envelope: CloudEvents 1.0, structured JSON mode (docs/domain.md)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from carbonledger.contracts.bounds import MAX_ID_LENGTH, text_fault
from carbonledger.contracts.records import SubjectKind
from carbonledger.contracts.strict_json import loads_strict
from carbonledger.contracts.topics import PARTNER_ID_PATTERN

SUBJECT_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def _rfc3339_text(value: Any) -> datetime:
    # Parsed here: pydantic would also read 1700000000 (or "1700000000") as Unix seconds.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 string")
    return datetime.fromisoformat(value)


SUBJECT_KIND_ATTRIBUTE = "subjectkind"


def _subject_kind(value: Any) -> SubjectKind:
    # CloudEvents' JSON format reads a null attribute as an absent one: the default.
    if value is None:
        return SubjectKind.PERSON
    if isinstance(value, str) and value in SubjectKind.__members__.values():
        return SubjectKind(value)
    raise PydanticCustomError(
        "subject_kind",
        'must be "person" (the default) or "unit", got {got}',
        {"got": repr(value)[:40]},
    )


# Stored and shown as sent, so without control characters (contracts/bounds.py).
PRINTABLE_ATTRIBUTES = ("id", "type", "subject", "datacontenttype")


class PartnerEvent(BaseModel):
    """One behaviour event as a partner publishes it.

    Extension attributes are allowed (CloudEvents permits them) and ignored, but
    one: `subjectkind` says whose behaviour it is, `person` (absent or null) or
    `unit` (an organisation); any other value is an invalid envelope.
    `data` must have been parsed with `loads_strict`, so quantities are Decimals.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    source: str = Field(pattern=PARTNER_ID_PATTERN)
    type: str = Field(min_length=1, max_length=64)
    time: Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
    subject: str = Field(min_length=1, max_length=128)
    datacontenttype: str | None = Field(default="application/json", max_length=128)
    data: dict[str, Any]
    subjectkind: Annotated[SubjectKind, BeforeValidator(_subject_kind)] = SubjectKind.PERSON

    @model_validator(mode="after")
    def _printable(self) -> PartnerEvent:
        # One check for all four (not a validator each): this runs for every record.
        for name in PRINTABLE_ATTRIBUTES:
            value = getattr(self, name)
            fault = text_fault(value) if value is not None else None
            if fault is not None:
                raise ValueError(f"{name} {fault}")
        return self


def envelope_attribute(raw: bytes, name: str) -> str | None:
    """A top-level string attribute of a record, or None (absent, or not a JSON object)."""
    try:
        doc = loads_strict(raw)
    except Exception:
        return None
    value = doc.get(name) if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def source_of(raw: bytes) -> str | None:
    """The `source` a record claims, for routing a JSON line to its partner."""
    return envelope_attribute(raw, "source")
