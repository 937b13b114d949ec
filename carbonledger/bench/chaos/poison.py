"""The table of internal-topic poison: records written straight to the topics between
stages as the admin principal, as a bug upstream or a compromised service would. The
stage that consumes each must dead-letter it (`invalid_record`, or `undecodable_record`
where not even the record model holds) and post nothing for it.

Each record starts as the real record of a valid trip, made by the stages' own domain
code (ingest's admission, quantify's formula, a credit decision), with one thing broken.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from carbonledger.bench.chaos.hostile import NUL, PARTNER, YEAR_ONE, Crafting, encode
from carbonledger.contracts import ids, topics
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.partners import PartnerRegistry, load_registry
from carbonledger.contracts.records import (
    Decision,
    DecisionKind,
    Origin,
    ReductionClaim,
    ValidatedBehaviour,
)
from carbonledger.contracts.settings import Settings
from carbonledger.services.ingest.domain.admission import validate_event
from carbonledger.services.quantify.domain.quantify import quantify

Document = dict[str, Any]
INVALID = frozenset({Reason.INVALID_RECORD.value})
UNDECODABLE = frozenset({Reason.INVALID_RECORD.value, Reason.UNDECODABLE_RECORD.value})


@dataclass(frozen=True)
class Upstream:
    """The valid records of one trip, as the stages would have written them."""

    behaviour: ValidatedBehaviour
    claim: ReductionClaim
    credit: Decision

    def document(self, topic: str) -> Document:
        record = {
            topics.VALIDATED: self.behaviour,
            topics.CLAIMS: self.claim,
            topics.DECISIONS: self.credit,
        }[topic]
        found: Document = orjson.loads(record.to_bytes())
        return found


@dataclass(frozen=True)
class Poison:
    name: str
    topic: str
    edit: Callable[[Document], None]  # breaks the valid record in place
    reasons: frozenset[str] = INVALID

    def build(self, upstream: Upstream) -> bytes:
        document = upstream.document(self.topic)
        self.edit(document)
        return encode(document)


@cache
def _inputs(partners: Path, methodologies: Path) -> tuple[PartnerRegistry, tuple[Methodology, ...]]:
    return load_registry(partners), tuple(load_methodologies(methodologies))


def upstream(settings: Settings, crafting: Crafting, event_id: str) -> Upstream:
    """The stages' own records of a valid trip with this id (credited under the shipped
    methodologies: a poison that is posted moves the books)."""
    registry, methodologies = _inputs(settings.partners_file, settings.methodology_dir)
    behaviour = validate_event(
        encode(crafting.trip(event_id)),
        partner_id=PARTNER,
        registry=registry,
        origin=Origin(topic=topics.partner_topic(PARTNER), partition=0, offset=0),
        now=crafting.at,
    )
    claim = quantify(behaviour, methodologies)
    assert claim.credited and claim.reduction_mg > 0, claim.reason
    credit = Decision(
        decision_id=ids.decision_id(DecisionKind.CREDIT.value, claim.claim_id),
        kind=DecisionKind.CREDIT,
        amount_mg=claim.reduction_mg,
        claim=claim,
    )
    return Upstream(behaviour, claim, credit)


# --- edits ------------------------------------------------------------------------------


def _at(path: str, value: Any) -> Callable[[Document], None]:
    def edit(document: Document) -> None:
        *parents, last = path.split(".")
        for p in parents:
            document = document[p]
        document[last] = value

    return edit


def _without(path: str) -> Callable[[Document], None]:
    def edit(document: Document) -> None:
        *parents, last = path.split(".")
        for p in parents:
            document = document[p]
        del document[last]

    return edit


def _with_nul(path: str) -> Callable[[Document], None]:
    def edit(document: Document) -> None:
        *parents, last = path.split(".")
        for p in parents:
            document = document[p]
        document[last] += NUL

    return edit


def _reversal_of_nothing(document: Document) -> None:
    """A reverse of a credit no one made: a decision id of no claim."""
    nothing = uuid.uuid4()
    document.update(
        decision_id=str(ids.decision_id(DecisionKind.REVERSE.value, nothing)),
        kind=DecisionKind.REVERSE.value,
        amount_mg=-document["amount_mg"],
        reverses=str(nothing),
    )


V, C, D = topics.VALIDATED, topics.CLAIMS, topics.DECISIONS
POISON: tuple[Poison, ...] = (
    Poison("validated-distance-abc", V, _at("data.distance_km", "abc")),
    Poison("validated-distance-negative", V, _at("data.distance_km", "-3.2")),
    Poison("validated-missing-subject", V, _without("subject"), UNDECODABLE),
    Poison("validated-id-nul", V, _with_nul("event.id")),
    Poison("validated-time-year-one", V, _at("ended_at", YEAR_ONE)),
    Poison("validated-region-999999", V, _at("region", "999999")),
    Poison("claims-reduction-minus-10-12", C, _at("reduction_mg", -(10**12))),
    Poison("claims-reduction-2-to-the-70", C, _at("reduction_mg", 2**70), UNDECODABLE),
    Poison("claims-region-999999", C, _at("region", "999999")),
    Poison("claims-id-nul", C, _with_nul("event.id")),
    Poison("claims-missing-reduction", C, _without("reduction_mg"), UNDECODABLE),
    Poison("decisions-reverse-of-nothing", D, _reversal_of_nothing),
    Poison("decisions-amount-2-to-the-70", D, _at("amount_mg", 2**70), UNDECODABLE),
    Poison("decisions-credit-negative", D, _at("amount_mg", -(10**12))),
    Poison("decisions-region-999999", D, _at("claim.region", "999999")),
    Poison("decisions-id-nul", D, _with_nul("claim.event.id")),
    Poison("decisions-missing-claim", D, _without("claim"), UNDECODABLE),
)


def _id_alone(document: Document) -> None:
    """Nothing left of the record but its event's id: no model reads it."""
    event = document["claim"]["event"] if "claim" in document else document["event"]
    document.clear()
    document["id"] = event["id"]


# One per topic, as the 21 undecodable records of issue 18 (already dead-lettered).
POISON += tuple(Poison(f"{topic}-id-alone", topic, _id_alone, UNDECODABLE) for topic in (V, C, D))

CASES = {case.name: case for case in POISON}
