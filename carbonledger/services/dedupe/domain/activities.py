"""Which claims describe the same real activity, and which of them wins (docs/dedupe.md).

Two credited claims of one dedupe group (a person, or one global natural key:
contracts/groups.py) are the same activity when they are of the same activity
class and either share a natural key or their intervals overlap by at least half
of the shorter one. Only measured intervals (started_at, ended_at) can overlap:
the calendar day of a dated behaviour says nothing about which act it was (lunch
and dinner, two venues, two toll passages of one day are different activities),
and an instant (zero-length interval) overlaps nothing, so those match by natural
key only. In a global group too only the natural key links claims: two people's
batches are not one batch because they were handed in at the same time. Links are transitive: a
cluster is a connected component. Its winner has the highest evidence rank, then
the smaller reduction (conservativeness), then the earlier `time`, then the
smaller `(source, id)`. All of this depends on the set of claims only, never on
the order they arrived in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta

from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.groups import dedupe_group, is_global_group
from carbonledger.contracts.records import ReductionClaim

ZERO = timedelta(0)


def event_key(claim: ReductionClaim) -> str:
    """A partner event's identity, `source/id`: a replay has the same key."""
    return f"{claim.event.source}/{claim.event.id}"


def same_interval(a: ReductionClaim, b: ReductionClaim) -> bool:
    """Intervals overlapping by at least half of the shorter, and by more than nothing."""
    overlap = min(a.ended_at, b.ended_at) - max(a.started_at, b.started_at)
    if overlap <= ZERO:
        return False
    shorter = min(a.ended_at - a.started_at, b.ended_at - b.started_at)
    return overlap * 2 >= shorter


def measured(claim: ReductionClaim) -> bool:
    """Whether the claim's interval was measured, so that overlap can link it."""
    spec = CATALOGUE.get(claim.type)
    return spec is None or spec.measured_interval


def _overlap_links(claim: ReductionClaim) -> bool:
    return measured(claim) and not is_global_group(dedupe_group(claim))


def same_activity(a: ReductionClaim, b: ReductionClaim) -> bool:
    if dedupe_group(a) != dedupe_group(b) or a.activity_class != b.activity_class:
        return False
    if a.natural_key is not None and a.natural_key == b.natural_key:
        return True
    return _overlap_links(a) and _overlap_links(b) and same_interval(a, b)


class _Components:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def _clusters_of_class(claims: Sequence[ReductionClaim]) -> list[list[ReductionClaim]]:
    ordered = sorted(claims, key=lambda c: (c.started_at, event_key(c)))
    components = _Components(len(ordered))
    first_with_key: dict[str, int] = {}
    links = [_overlap_links(claim) for claim in ordered]
    for i, claim in enumerate(ordered):
        if claim.natural_key is not None:
            components.join(first_with_key.setdefault(claim.natural_key, i), i)
        if not links[i]:
            continue  # a day, an instant or one physical thing: only its key links it
        # Sorted by start, so only earlier claims still running can overlap this one.
        for j in range(i - 1, -1, -1):
            earlier = ordered[j]
            if earlier.ended_at > claim.started_at and links[j] and same_interval(earlier, claim):
                components.join(j, i)
    grouped: dict[int, list[ReductionClaim]] = defaultdict(list)
    for i, claim in enumerate(ordered):
        grouped[components.find(i)].append(claim)
    return list(grouped.values())


def clusters(claims: Iterable[ReductionClaim]) -> list[list[ReductionClaim]]:
    """The same-activity clusters among one dedupe group's credited claims."""
    by_class: dict[str, list[ReductionClaim]] = defaultdict(list)
    for claim in claims:
        by_class[claim.activity_class].append(claim)
    found: list[list[ReductionClaim]] = []
    for members in by_class.values():
        found.extend(_clusters_of_class(members))
    return found


def precedence(claim: ReductionClaim) -> tuple[int, int, object, str, str]:
    """Smaller is stronger: rank (high first), reduction, time, then (source, id)."""
    return (
        -claim.evidence_rank,
        claim.reduction_mg,
        claim.time,
        claim.event.source,
        claim.event.id,
    )


def winner(cluster: Sequence[ReductionClaim]) -> ReductionClaim:
    return min(cluster, key=precedence)


def why_lost(loser: ReductionClaim, won: ReductionClaim) -> str:
    """The first rule that put the winner ahead, in words an auditor can check."""
    if won.evidence_rank != loser.evidence_rank:
        return (
            f"{won.event.source} has evidence rank {won.evidence_rank} for "
            f"{won.activity_class}, {loser.event.source} {loser.evidence_rank}"
        )
    if won.reduction_mg != loser.reduction_mg:
        return f"equal rank; the smaller reduction wins ({won.reduction_mg} mg)"
    if won.time != loser.time:
        return "equal rank and reduction; the earlier time wins"
    return "equal rank, reduction and time; the smaller (source, id) wins"
