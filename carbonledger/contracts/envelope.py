"""The partner event envelope: CloudEvents 1.0, structured JSON mode (docs/domain.md)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from carbonledger.contracts.exact import loads_exact
from carbonledger.contracts.topics import PARTNER_ID_PATTERN

SUBJECT_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class PartnerEvent(BaseModel):
    """One behaviour event as a partner publishes it.

    Extension attributes are allowed (CloudEvents permits them) and ignored.
    `data` must have been parsed with `loads_exact`, so quantities are Decimals.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(pattern=PARTNER_ID_PATTERN)
    type: str = Field(min_length=1, max_length=64)
    time: AwareDatetime
    subject: str = Field(min_length=1, max_length=128)
    datacontenttype: str | None = "application/json"
    data: dict[str, Any]


def envelope_attribute(raw: bytes, name: str) -> str | None:
    """A top-level string attribute of a record, or None (absent, or not a JSON object)."""
    try:
        doc = loads_exact(raw)
    except Exception:
        return None
    value = doc.get(name) if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def source_of(raw: bytes) -> str | None:
    """The `source` a record claims, for routing a JSON line to its partner."""
    return envelope_attribute(raw, "source")
