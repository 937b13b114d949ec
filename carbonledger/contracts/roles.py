"""Who may read what (DOMAIN §14): the roles a bearer token names, their scope, and
the policy every read route of the platform declares itself under.

A token names one role and, for the roles scoped to one account, whose account it
is: a person's or a unit's subject (64-hex, the same HMAC the partners report), a
partner's id, a government's region (GB/T 2260; its whole subtree). The routes
never decide access themselves: each declares the `Reading` it serves and the key
it serves it for, and `allows` answers from `POLICY`. A new area (the registry's
operations) joins by adding its readings to `POLICY`.

Tokens (their claims, signature, issuer) are runtime/tokens.py's; this module is
pure so every floor, the portal's templates included, can ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from carbonledger.contracts.regions import NATIONAL, RegionTable


class Role(StrEnum):
    PERSON = "person"
    UNIT = "unit"
    PARTNER = "partner"
    GOVERNMENT = "government"
    AUDITOR = "auditor"
    REGISTRY = "registry"
    OPERATOR = "operator"


class Reading(StrEnum):
    """What a read route serves, keyed by whose it is."""

    PERSONAL = "personal"  # a person's account, keyed by subject
    UNIT = "unit"  # a unit's account, keyed by subject
    CONSENTS = "consents"  # a subject's consent history
    PROCEEDS = "proceeds"  # a contributor's (person's or unit's) registry proceeds
    FAMILY = "family"  # a family view, keyed by its head
    CLAIM = "claim"  # what became of one event, keyed by its source (partner)
    ENTERPRISE = "enterprise"  # a partner's enterprise account
    EMPLOYER = "employer"  # an employer view, keyed by the employer's partner id
    REJECTIONS = "rejections"  # a partner's dead letters
    GOVERNMENT = "government"  # a region's book and statistics, keyed by region
    TOTALS = "totals"  # the three books' national totals


# Which role reads what; the key check follows (`_owns`). Auditors and operators
# read everything; the registry reads nothing here (its operations are its own).
POLICY: dict[Role, frozenset[Reading]] = {
    Role.PERSON: frozenset(
        {Reading.PERSONAL, Reading.CONSENTS, Reading.PROCEEDS, Reading.FAMILY, Reading.CLAIM}
    ),
    Role.UNIT: frozenset({Reading.UNIT, Reading.CONSENTS, Reading.PROCEEDS, Reading.CLAIM}),
    Role.PARTNER: frozenset(
        {Reading.ENTERPRISE, Reading.EMPLOYER, Reading.REJECTIONS, Reading.CLAIM}
    ),
    Role.GOVERNMENT: frozenset({Reading.GOVERNMENT, Reading.TOTALS}),
    Role.AUDITOR: frozenset(Reading),
    Role.REGISTRY: frozenset(),
    Role.OPERATOR: frozenset(Reading),
}
# Whose account a scoped role reads, by reading: the principal's field the key must match.
_KEYED_BY_SUBJECT = frozenset(
    {
        Reading.PERSONAL,
        Reading.UNIT,
        Reading.CONSENTS,
        Reading.PROCEEDS,
        Reading.FAMILY,
        Reading.CLAIM,
    }
)
_KEYED_BY_PARTNER = frozenset(
    {Reading.ENTERPRISE, Reading.EMPLOYER, Reading.REJECTIONS, Reading.CLAIM}
)


@dataclass(frozen=True)
class Principal:
    """Who a valid token says the caller is. `subject` for person and unit, `partner`
    for partner, `region` for government; unscoped roles carry none."""

    role: Role
    subject: str | None = None
    partner: str | None = None
    region: str | None = None
    token_id: str | None = None

    @property
    def unscoped(self) -> bool:
        """Auditors and operators: every key of what they may read."""
        return self.role in (Role.AUDITOR, Role.OPERATOR)

    def name(self) -> str:
        """How the portal and the logs name the caller (never a secret)."""
        scope = self.subject or self.partner or self.region
        return f"{self.role.value}:{scope}" if scope else self.role.value


def allows(principal: Principal, reading: Reading, key: str, regions: RegionTable) -> bool:
    """May this principal read `reading` of `key`? A claim's key is the event's
    source for a partner and the claim's subject for a person or a unit."""
    if reading not in POLICY[principal.role]:
        return False
    if principal.unscoped:
        return True
    if principal.role is Role.GOVERNMENT:
        return _within(principal.region, reading, key, regions)
    if principal.role is Role.PARTNER:
        return reading in _KEYED_BY_PARTNER and key == principal.partner
    return reading in _KEYED_BY_SUBJECT and key == principal.subject


def _within(region: str | None, reading: Reading, key: str, regions: RegionTable) -> bool:
    """A government reads its own region's subtree; the national totals only when
    its region is the nation's."""
    if region is None:
        return False
    if reading is Reading.TOTALS:
        return region == NATIONAL
    if region == NATIONAL:
        return True
    return key in regions and region in regions.rollup_keys(key)


def scope_problem(role: Role, subject: str | None, partner: str | None, region: str | None) -> str:
    """Why a token's scope claims do not fit its role ('' when they do)."""
    needs = {
        Role.PERSON: ("subject", subject),
        Role.UNIT: ("subject", subject),
        Role.PARTNER: ("partner", partner),
        Role.GOVERNMENT: ("region", region),
    }
    if role in needs:
        name, value = needs[role]
        return "" if value else f"a {role.value} token names its {name}"
    return ""
