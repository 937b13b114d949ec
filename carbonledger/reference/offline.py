"""Offline quantification: the service's domain code over JSON lines, for people and tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from carbonledger.contracts.envelope import envelope_attribute, source_of
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.partners import PartnerRegistry
from carbonledger.contracts.records import Origin, ReductionClaim, ValidatedBehaviour
from carbonledger.services.ingest.domain.admission import admit
from carbonledger.services.quantify.domain.quantify import quantify


def result_of(claim: ReductionClaim) -> dict[str, Any]:
    """The outcome of one event as `carbonledger quantify` prints it (and the service emits)."""
    return {
        "source": claim.event.source,
        "id": claim.event.id,
        "credited": claim.credited,
        "reduction_mg": claim.reduction_mg,
        "methodology": claim.methodology.model_dump() if claim.methodology else None,
        "reason": claim.reason,
        "factors": [f.model_dump(mode="json") for f in claim.factors],
    }


def quantify_lines(
    lines: Iterable[bytes],
    registry: PartnerRegistry,
    methodologies: Sequence[Methodology],
    now: datetime,
) -> Iterator[dict[str, Any]]:
    """One result per line: the claim's outcome, or the rejection that stopped the event."""
    for offset, raw in enumerate(lines):
        partner = source_of(raw)
        outcome = admit(
            raw,
            None,
            partner_id=partner,
            registry=registry,
            origin=Origin(topic="stdin", partition=0, offset=offset),
            now=now,
        )
        if isinstance(outcome, ValidatedBehaviour):
            yield result_of(quantify(outcome, methodologies))
        else:
            yield {
                "source": partner,
                "id": envelope_attribute(raw, "id"),
                "credited": False,
                "reduction_mg": 0,
                "methodology": None,
                "reason": outcome.reason,
                "factors": [],
            }
