"""Consent (DOMAIN §12): whether a subject's consent to a partner was in force when a
behaviour ended.

A partner with `consent_required` (a government scheme's) may have its users'
behaviours credited only with their authorisation. The consent records are the
dedupe group's claims of types `consent.granted` and `consent.withdrawn`: one
subject's, each about the partner that reported it (`event.source`). A behaviour
needs the latest record of its subject and partner at or before its end to be a
grant (granted ≤ end < withdrawn). Records are ordered by time, then a withdrawal
after a grant of the same instant, then event key, so the answer depends on the set
of records only, never on the order they arrived in.

The same order says which records can still decide anything: for a behaviour
ending at or after some instant, only the records from that instant on and the
latest one before it. Dedupe keeps exactly those (person.py `prune`), so a grant
from a year ago still counts and a subject's history does not grow for ever.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime

from carbonledger.contracts.accounts import ConsentOrder, consent_order
from carbonledger.contracts.catalogue import CONSENT_WITHDRAWN, is_consent_type
from carbonledger.contracts.groups import dedupe_group, is_global_group
from carbonledger.contracts.records import ReductionClaim
from carbonledger.services.dedupe.domain.activities import event_key
from carbonledger.services.dedupe.domain.household import NEEDS_HISTORY

Party = tuple[str, str]  # a subject, and the partner its consent is given to


def is_consent(claim: ReductionClaim) -> bool:
    return is_consent_type(claim.type)


def needs_consent(claim: ReductionClaim) -> bool:
    """Whether the claim is a behaviour that could be credited, from a partner that
    credits only with consent. Claims not credited for their own reason keep it."""
    return claim.consent_required and (claim.credited or claim.reason == NEEDS_HISTORY)


def record_order(record: ReductionClaim) -> ConsentOrder:
    """Time, then a withdrawal after a grant of the same instant, then event key."""
    return consent_order(record.time, record.type == CONSENT_WITHDRAWN, event_key(record))


class Consents:
    """A dedupe group's consent records, per subject and partner, in consent order,
    with their times beside them: built once per rule run, each claim's deciding
    record is then one bisection."""

    def __init__(self, claims: Iterable[ReductionClaim]) -> None:
        parties: dict[Party, list[ReductionClaim]] = defaultdict(list)
        for claim in claims:
            if is_consent(claim):
                parties[(claim.subject, claim.event.source)].append(claim)
        self.records = {party: sorted(rs, key=record_order) for party, rs in parties.items()}
        self.times = {party: [r.time for r in rs] for party, rs in self.records.items()}

    def deciding(self, claim: ReductionClaim) -> ReductionClaim | None:
        """The latest record of the claim's subject and partner at or before its end."""
        party = (claim.subject, claim.event.source)
        at = bisect_right(self.times.get(party, []), claim.ended_at)
        return self.records[party][at - 1] if at else None

    def missing(self, claim: ReductionClaim) -> str | None:
        """Why the subject's consent was not in force at the claim's end, or None if it was."""
        partner, end = claim.event.source, claim.ended_at.isoformat()
        if is_global_group(dedupe_group(claim)):
            # The subject's consent records are in the subject's state, not the key's.
            return (
                f"{partner} credits only with the subject's consent, which cannot be checked "
                f"for a behaviour credited once across people (global key {claim.natural_key})"
            )
        record = self.deciding(claim)
        if record is None:
            return (
                f"{partner} credits only with the subject's consent: no consent record at "
                f"or before the behaviour's end {end}"
            )
        if record.type == CONSENT_WITHDRAWN:
            return (
                f"{partner} credits only with the subject's consent: withdrawn at "
                f"{record.time.isoformat()} ({event_key(record)}), at or before the "
                f"behaviour's end {end}"
            )
        return None

    def undeciding(self, since: datetime) -> set[str]:
        """Event keys of the records that decide no behaviour ending at or after
        `since`: per subject and partner, all before it but the latest."""
        gone: set[str] = set()
        for party, records in self.records.items():
            before = bisect_left(self.times[party], since)
            gone.update(event_key(r) for r in records[: max(before - 1, 0)])
        return gone

    def superseded_at(self) -> Iterator[datetime]:
        """For each subject and partner with more than one record, the time of the
        latest: once the window has passed it, only that one is still needed."""
        for records in self.records.values():
            if len(records) > 1:
                yield records[-1].time


def refusals(claims: Iterable[ReductionClaim]) -> dict[str, str]:
    """Event key → why, for each claim that needs consent and did not have it. A group
    with no such claim (every partner that needs no consent) does no consent work."""
    claims = list(claims)
    needing = [claim for claim in claims if needs_consent(claim)]
    if not needing:
        return {}
    consents = Consents(claims)
    refused = {}
    for claim in needing:
        why = consents.missing(claim)
        if why is not None:
            refused[event_key(claim)] = why
    return refused
