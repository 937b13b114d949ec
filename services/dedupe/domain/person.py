"""Per-person dedupe state and the decisions it produces.

The state of one person holds every claim seen for them, keyed by the partner
event `(source, id)`. Deciding is pure and deterministic: the decisions for a
claim depend only on the state, so re-deciding a replayed claim re-emits exactly
the decisions (with the same ids) that its first delivery produced. That makes
a crash between "state saved" and "decision published" harmless: the redelivered
claim publishes again, and the ledger ignores what it already has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from carbonledger.contracts import ids
from carbonledger.contracts.records import Decision, DecisionKind, ReductionClaim


def event_key(claim: ReductionClaim) -> str:
    return f"{claim.event.source}/{claim.event.id}"


@dataclass
class PersonState:
    subject: str
    claims: dict[str, ReductionClaim] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "subject": self.subject,
                "claims": {k: c.model_dump(mode="json") for k, c in self.claims.items()},
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> PersonState:
        doc = orjson.loads(raw)
        return cls(
            doc["subject"], {k: ReductionClaim.model_validate(c) for k, c in doc["claims"].items()}
        )


def decisions_for(claim: ReductionClaim) -> list[Decision]:
    """What a single, uncontested claim means for the books."""
    if not claim.credited:
        return [
            Decision(
                decision_id=ids.decision_id(DecisionKind.NOT_CREDITED, claim.claim_id),
                kind=DecisionKind.NOT_CREDITED,
                amount_mg=0,
                claim=claim,
                reason=claim.reason,
            )
        ]
    return [
        Decision(
            decision_id=ids.decision_id(DecisionKind.CREDIT, claim.claim_id),
            kind=DecisionKind.CREDIT,
            amount_mg=claim.reduction_mg,
            claim=claim,
            winner_claim_id=claim.claim_id,
        )
    ]


def observe(state: PersonState, claim: ReductionClaim) -> tuple[bool, list[Decision]]:
    """Record a claim in the person's state; returns (state changed, decisions to publish).

    A replay of a known `(source, id)` changes nothing and re-emits the decisions of
    the claim first seen under that key, whatever the replay carries.
    """
    key = event_key(claim)
    known = state.claims.get(key)
    if known is not None:
        return False, decisions_for(known)
    state.claims[key] = claim
    return True, decisions_for(claim)
