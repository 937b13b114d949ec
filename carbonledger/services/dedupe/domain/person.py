"""One person's dedupe state, and the decisions a newly arrived claim causes.

"Person" is the dedupe group (contracts/groups.py): a subject, or for a type whose
natural key is global, the key itself, whose claims may be many people's. The
state's `subject` field holds the group (a person's has always been their subject,
so states stored before global keys restore unchanged).

The state holds the person's claims inside the window, the standing position of
each (what the books currently hold for it) and the decisions made so far. On a
new claim the whole rule book is re-run over the person's claims (resolve.py);
every claim whose outcome moved gets compensating decisions: a reverse of its
standing credit, a credit of its new amount, or a duplicate or cap record. So the
books always equal a batch run over the claims seen, whatever their order.

Decision ids are derived from the claim and the decision's sequence number for
that claim, and each arrival's decisions are remembered, so a claim redelivered
after a crash (its state saved, its decisions perhaps not yet published)
re-emits exactly the same decisions, which the ledger already ignores or needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from uuid import UUID

from carbonledger.contracts import ids
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.records import Decision, DecisionKind, ReductionClaim
from carbonledger.services.dedupe.domain.activities import event_key
from carbonledger.services.dedupe.domain.consent import Consents, is_consent
from carbonledger.services.dedupe.domain.resolve import (
    Outcome,
    Status,
    Why,
    cap_period_end,
    resolve,
)

DEFAULT_WINDOW = timedelta(days=7)
# No accepted claim can overlap one that ended longer ago than the longest interval.
LONGEST_INTERVAL = max(
    (spec.max_duration for spec in CATALOGUE.values() if spec.max_duration is not None),
    default=timedelta(days=1),
)
_STATUS_KIND = {
    Status.DUPLICATE: DecisionKind.DUPLICATE,
    Status.CAPPED: DecisionKind.NOT_CREDITED,
    Status.NOT_CREDITED: DecisionKind.NOT_CREDITED,
}


@dataclass(frozen=True)
class Entry:
    """One decision about a claim, as remembered (the claim itself is in the state)."""

    kind: DecisionKind
    amount_mg: int
    winner: str | None = None
    reverses: str | None = None
    reason: str | None = None
    detail: str | None = None
    claim: str | None = None  # a superseded claim it is about; None: the event's current one


@dataclass
class Position:
    status: Status = Status.NEW
    amount_mg: int = 0
    credit: str | None = None  # id of the credit decision standing in the books
    winner: str | None = None
    history: list[Entry] = field(default_factory=list)  # a decision's sequence is its index
    credit_claim: str | None = None  # the claim that standing credit was made for

    @property
    def capped(self) -> bool:
        """Whether a per-person cap holds this claim's credit below its reduction."""
        return self.status is Status.CAPPED or (
            self.status is Status.CREDITED
            and bool(self.history)
            and self.history[-1].reason == Why.CAPPED
        )


@dataclass
class PersonState:
    subject: str  # the dedupe group: the subject, or a global key's group
    claims: dict[str, ReductionClaim] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    caused: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    superseded: dict[str, ReductionClaim] = field(default_factory=dict)  # by claim id


def complete_positions(state: PersonState) -> PersonState:
    """Give claims stored before dedupe had positions the one they stood in then."""
    for key, claim in state.claims.items():
        if key not in state.positions:
            state.positions[key], state.caused[key] = _standalone(claim), [(key, 0)]
    return state


def _standalone(claim: ReductionClaim) -> Position:
    """The position of a claim stored before dedupe had positions: each claim stood
    alone, credited in full by the sequence-0 decision (same id as then) or not credited."""
    if not claim.credited:
        entry = Entry(DecisionKind.NOT_CREDITED, 0, None, None, claim.reason, claim.reason_detail)
        return Position(Status.NOT_CREDITED, history=[entry])
    credit = str(_decision_id(DecisionKind.CREDIT, claim, 0))
    entry = Entry(DecisionKind.CREDIT, claim.reduction_mg, event_key(claim))
    return Position(Status.CREDITED, claim.reduction_mg, credit, None, [entry], str(claim.claim_id))


@dataclass(frozen=True)
class Observation:
    new: bool
    late: bool
    decisions: list[Decision]
    pruned: int = 0


def _decision_id(kind: DecisionKind, claim: ReductionClaim, sequence: int) -> UUID:
    return _derived_decision_id(kind, claim.claim_id, sequence)


# A credit's id is derived when it is made (its position keeps it) and again for its
# decision, and a replay derives every id of its arrival again: the latest few
# thousand are remembered (SHA-1 and UUID building were a twentieth of dedupe's time).
@lru_cache(maxsize=4096)
def _derived_decision_id(kind: DecisionKind, claim_id: UUID, sequence: int) -> UUID:
    # Sequence 0 keeps the id a lone, uncontested decision has always had.
    return ids.decision_id(kind, claim_id, *((sequence,) if sequence else ()))


def _decision(state: PersonState, key: str, sequence: int) -> Decision:
    entry = state.positions[key].history[sequence]
    claim = state.superseded[entry.claim] if entry.claim else state.claims[key]
    won = state.claims.get(entry.winner) if entry.winner else None
    return Decision(
        decision_id=_decision_id(entry.kind, claim, sequence),
        kind=entry.kind,
        amount_mg=entry.amount_mg,
        claim=claim,
        winner_claim_id=won.claim_id if won else None,
        winner=won.event if won else None,
        reverses=UUID(entry.reverses) if entry.reverses else None,
        reason=entry.reason,
        reason_detail=entry.detail,
        sequence=sequence,
    )


def _record(state: PersonState, key: str, entry: Entry) -> tuple[str, int]:
    position = state.positions[key]
    position.history.append(entry)
    return key, len(position.history) - 1


def _reverse_reason(state: PersonState, key: str, target: Outcome) -> tuple[str, str]:
    if target.status is Status.DUPLICATE:
        return Why.DISPLACED, f"displaced by {target.winner}: {target.detail}"
    if _superseded_credit(state, key) is not None:
        return Why.RECOMPUTED, "the claim was recomputed or completed; its new amount follows"
    if target.reason is not None:
        return target.reason, target.detail or ""
    return Why.CORRECTED, "no longer held down by a cap or another claim"


def _superseded_credit(state: PersonState, key: str) -> str | None:
    """The claim a standing credit was made for, when a recomputation has replaced it."""
    made_for = state.positions[key].credit_claim
    return made_for if made_for not in (None, str(state.claims[key].claim_id)) else None


def _move(
    state: PersonState, key: str, target: Outcome, restate: bool = False
) -> list[tuple[str, int]]:
    """Compensating decisions that take one claim from its position to its target.

    `restate` records the target even when nothing moved (a superseded claim's
    standing passes to its successor: reverse and credit again, or a new record).
    """
    position, made = state.positions[key], []

    def note(entry: Entry) -> int:
        made.append(_record(state, key, entry))
        return made[-1][1]

    if position.amount_mg != target.amount_mg or (restate and target.amount_mg):
        if position.amount_mg:
            reason, detail = _reverse_reason(state, key, target)
            note(
                Entry(
                    DecisionKind.REVERSE,
                    -position.amount_mg,
                    target.winner,
                    position.credit,
                    reason,
                    detail,
                    _superseded_credit(state, key),
                )
            )
            position.credit = None
        if target.amount_mg:
            about = target.claim or state.claims[key]
            if target.claim is not None:  # completed by a rule: kept for its provenance
                state.superseded[str(about.claim_id)] = about
            entry = Entry(
                DecisionKind.CREDIT,
                target.amount_mg,
                key,
                None,
                target.reason,
                target.detail,
                str(about.claim_id) if target.claim is not None else None,
            )
            sequence = note(entry)
            position.credit = str(_decision_id(DecisionKind.CREDIT, about, sequence))
            position.credit_claim = str(about.claim_id)
    kind = _STATUS_KIND.get(target.status)
    if kind is not None and (
        restate or target.status is not position.status or target.winner != position.winner
    ):
        note(Entry(kind, 0, target.winner, None, target.reason, target.detail))
    position.status, position.amount_mg, position.winner = (
        target.status,
        target.amount_mg,
        target.winner,
    )
    return made


def retained_until(claim: ReductionClaim) -> datetime:
    """When a claim can no longer meet an accepted one: its interval, and its caps' periods."""
    until = claim.ended_at + LONGEST_INTERVAL
    for cap in claim.caps:
        last_day = cap_period_end(cap, claim)
        period_end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=CST)
        until = max(until, period_end + timedelta(days=1))
    return until


def prune(state: PersonState, cutoff: datetime) -> int:
    """Forget claims no accepted claim can reach any more (window of event time), and
    consent records that can no longer decide a claim kept or to come (consent.py)."""
    behaviours = {k: c for k, c in state.claims.items() if not is_consent(c)}
    expired = {k for k, c in behaviours.items() if retained_until(c) < cutoff}
    if expired:
        still_needed = {
            k
            for t, made in state.caused.items()
            if t.split("\x1f")[0] not in expired and _pins(state, t)
            for k, _ in made
        }
        expired -= still_needed
    if len(behaviours) < len(state.claims):  # consent records: some may decide nothing now
        # A claim kept past the cutoff (for its cap period) is decided again on every
        # arrival: the consent that decided it must stay with it.
        since = min([cutoff, *(c.ended_at for k, c in behaviours.items() if k not in expired)])
        expired |= Consents(state.claims.values()).undeciding(since)
    if not expired:  # most arrivals: nothing to forget, nothing to walk
        return 0
    for key in expired:
        del state.claims[key]
        state.positions.pop(key, None)
    for trigger in [t for t in state.caused if t.split("\x1f")[0] in expired]:
        del state.caused[trigger]
    for trigger, made in state.caused.items():
        if any(k in expired for k, _ in made):
            state.caused[trigger] = [(k, n) for k, n in made if k not in expired]
    for old in [i for i, c in state.superseded.items() if event_key(c) in expired]:
        del state.superseded[old]
    return len(expired)


def _pins(state: PersonState, trigger: str) -> bool:
    """Whether the claims an arrival moved are kept as long as its own claim, so that
    its replay re-emits every decision it made. A consent record is kept long after
    the window (the latest per partner for ever): the claims it moved go with the
    window, and its replay re-emits what is left of its decisions, long since in the
    books (each batch's decisions are out before a later batch's state is kept)."""
    claim = state.claims.get(trigger.split("\x1f")[0])
    return claim is None or not is_consent(claim)


def needed_until(state: PersonState) -> datetime | None:
    """The last instant something in the state can still be forgotten at, once the
    cutoff has passed it: its claims' retention, and for a partner with several
    consent records the latest's time (the earlier ones then decide nothing). None:
    nothing to forget, ever (no claims, or one consent record per partner)."""
    behaviours = [c for c in state.claims.values() if not is_consent(c)]
    until = [retained_until(c) for c in behaviours]
    if len(behaviours) < len(state.claims):  # only consent records can be superseded
        until.extend(Consents(state.claims.values()).superseded_at())
    return max(until, default=None)


def late_decision(claim: ReductionClaim, cutoff: datetime) -> Decision:
    return Decision(
        decision_id=ids.decision_id(DecisionKind.NOT_CREDITED, claim.claim_id, Why.LATE.value),
        kind=DecisionKind.NOT_CREDITED,
        amount_mg=0,
        claim=claim,
        reason=Why.LATE,
        reason_detail=f"behaviour ended {claim.ended_at.isoformat()}, before the dedupe "
        f"window opened at {cutoff.isoformat()}",
    )


def _decide(state: PersonState, trigger: str) -> list[Decision]:
    """Re-run the rules over the person's claims and correct every claim that moved."""
    made: list[tuple[str, int]] = []
    for key, target in sorted(resolve(state.claims.values()).items()):
        made.extend(_move(state, key, target))
    state.caused[trigger] = made
    return [_decision(state, *m) for m in made]


def observe(
    state: PersonState,
    claim: ReductionClaim,
    *,
    watermark: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> Observation:
    """Take in one claim of this person; the watermark already includes it."""
    if claim.supersedes is not None:
        return _correct(state, claim)
    key = event_key(claim)
    if key in state.claims:
        return Observation(False, False, [_decision(state, *m) for m in state.caused.get(key, [])])
    cutoff = watermark - window
    # A consent record is never late: it holds from its time, and may still decide
    # claims inside the window however long ago it was given.
    if claim.ended_at < cutoff and not is_consent(claim):
        return Observation(True, True, [late_decision(claim, cutoff)])
    pruned = prune(state, cutoff)
    state.claims[key] = claim
    state.positions[key] = Position()
    return Observation(True, False, _decide(state, key), pruned)


def _correct(state: PersonState, claim: ReductionClaim) -> Observation:
    """A recomputed claim (`carbonledger recompute`) replacing an earlier one of its event.

    Inside the window it takes the earlier claim's place and the rules run again, so
    clusters and caps still hold. Outside it, the books are corrected from what they
    held when the recomputation read them: the standing credit is reversed and the new
    amount credited, never more than that credit when a cap or share had cut it.
    Either way a redelivered correction has the same decision ids.
    """
    assert claim.supersedes is not None
    key = event_key(claim)
    trigger = f"{key}\x1f{claim.claim_id}"
    if trigger in state.caused:
        return Observation(False, False, [_decision(state, *m) for m in state.caused[trigger]])
    stored = state.claims.get(key)
    if stored is not None and stored.claim_id == claim.supersedes.claim_id:
        old = str(stored.claim_id)
        state.superseded[old] = stored
        position = state.positions[key]  # its past decisions stay about the old claim
        position.history = [e if e.claim else replace(e, claim=old) for e in position.history]
        state.claims[key] = claim
        _decide(state, trigger)
        if all(moved != key for moved, _ in state.caused[trigger]):
            target = resolve(state.claims.values())[key]
            state.caused[trigger] += _move(state, key, target, restate=True)
        return Observation(True, False, [_decision(state, *m) for m in state.caused[trigger]])
    if stored is not None:  # an older recomputation, or one of a claim never seen here
        return Observation(False, False, [])
    return Observation(True, False, outside_window_correction(claim))


def outside_window_correction(claim: ReductionClaim) -> list[Decision]:
    assert claim.supersedes is not None
    standing, credit = claim.supersedes.standing_mg, claim.supersedes.standing_credit
    if standing <= 0 or credit is None:
        return []  # a duplicate or uncredited claim stays so: its activity was credited elsewhere
    cut = standing < claim.supersedes.previous_mg  # a cap had held the old credit down
    amount = min(claim.reduction_mg, standing) if cut else claim.reduction_mg
    detail = (
        f"recomputed under {claim.methodology.id}@{claim.methodology.version}"
        if claim.methodology
        else "recomputed"
    )
    made = [
        Decision(
            decision_id=ids.decision_id(DecisionKind.REVERSE, claim.claim_id, "recompute"),
            kind=DecisionKind.REVERSE,
            amount_mg=-standing,
            claim=claim,
            reverses=credit,
            reason=Why.RECOMPUTED,
            reason_detail=detail,
        )
    ]
    if amount > 0:
        made.append(
            Decision(
                decision_id=ids.decision_id(DecisionKind.CREDIT, claim.claim_id, "recompute"),
                kind=DecisionKind.CREDIT,
                amount_mg=amount,
                claim=claim,
                winner_claim_id=claim.claim_id,
                winner=claim.event,
                reason=Why.RECOMPUTED,
                reason_detail=detail,
                sequence=1,
            )
        )
    return made
