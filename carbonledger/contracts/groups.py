"""Dedupe groups: which claims dedupe compares with each other (docs/dedupe.md).

A claim can only duplicate a claim of its own group. For most types that is the
person (or unit): the subject. A type whose natural key is global (a recycling
batch, a clothes batch, a car's car-free day, a PV meter's period, a tree
certificate: `BehaviourType.global_key`) names one physical thing whoever
reports it, so its group is the thing itself, `~global/<class>/<natural key>`.

The group is the key of every record on `reduction.claims`: all claims of one
group meet in one partition of the dedupe stage and in one state entry there,
whatever their subjects. The `~` prefix cannot be a subject (subjects are HMAC
hex digests) and keeps the global groups apart from people in dedupe's state.
"""

from __future__ import annotations

from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.records import ReductionClaim

GLOBAL_PREFIX = "~global/"


def has_global_key(behaviour_type: str) -> bool:
    """Whether claims of this type are one activity with every claim of equal key."""
    spec = CATALOGUE.get(behaviour_type)
    return spec is not None and spec.global_key


def dedupe_group(claim: ReductionClaim) -> str:
    """The group the claim is de-duplicated in: its global key, else its subject.

    A global-key type always has its natural key (its key fields are required);
    a claim without one falls back to its subject rather than meeting strangers."""
    if claim.natural_key is not None and has_global_key(claim.type):
        return f"{GLOBAL_PREFIX}{claim.activity_class}/{claim.natural_key}"
    return claim.subject


def is_global_group(group: str) -> bool:
    return group.startswith(GLOBAL_PREFIX)
