"""The partner registry: who may publish what, and how strong their evidence is."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from carbonledger.contracts.access import DEV_SIGNING_SUFFIX, weak_secret
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.topics import PARTNER_ID_PATTERN

DEV_SECRET_SUFFIX = DEV_SIGNING_SUFFIX

log = logging.getLogger(__name__)

# Activity classes that were renamed: an old registry still loads, read with the
# new name, and the operator is told to rename it (food.no_cutlery's class was
# `order` until two behaviours on one order became two activities).
RENAMED_CLASSES = {"order": "no_cutlery"}
ACTIVITY_CLASSES = frozenset(b.activity_class for b in CATALOGUE.values())


def _renamed(partner: object, ranks: dict[str, object]) -> dict[str, object]:
    """`ranks` with old class names read as their new ones (each rename logged)."""
    ranks = dict(ranks)
    for old, new in RENAMED_CLASSES.items():
        if old not in ranks:
            continue
        if new in ranks:
            raise ValueError(
                f"evidence_rank names both {old!r} and {new!r}: {old!r} is the old name of "
                f"{new!r}, keep only {new!r}"
            )
        log.warning(
            "partner %s: evidence_rank class %r is now called %r; read as %r, rename it in "
            "the partner registry",
            partner,
            old,
            new,
            new,
        )
        ranks[new] = ranks.pop(old)
    return ranks


class Credentials(BaseModel):
    """Where a partner's HTTP signing secret is: an environment variable, never the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hmac_secret_env: str | None = None


class Partner(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    id: str = Field(pattern=PARTNER_ID_PATTERN)
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    behaviours: frozenset[str]
    evidence_rank: dict[str, int] = {}
    enabled: bool = True
    # A government scheme's partner: its users' behaviours are credited only while
    # their consent to it is in force (consent.granted / consent.withdrawn, DOMAIN §12).
    consent_required: bool = False
    credentials: Credentials = Credentials()

    @model_validator(mode="before")
    @classmethod
    def _renamed_classes(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("evidence_rank"), dict):
            ranks = _renamed(value.get("id"), value["evidence_rank"])
            return {**value, "evidence_rank": ranks}
        return value

    @field_validator("evidence_rank")
    @classmethod
    def _known_classes(cls, value: dict[str, int]) -> dict[str, int]:
        # A misspelt class would silently rank 0 and lose every dedupe it should win.
        unknown = sorted(value.keys() - ACTIVITY_CLASSES)
        if unknown:
            raise ValueError(
                f"evidence_rank names classes no catalogue type has: {', '.join(unknown)} "
                f"(the classes are {', '.join(sorted(ACTIVITY_CLASSES))})"
            )
        return value

    @field_validator("behaviours")
    @classmethod
    def _known_behaviours(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - CATALOGUE.keys())
        if unknown:
            raise ValueError(f"unknown behaviour types: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _consent_checkable(self) -> Partner:
        # A global key's claims meet in the key's dedupe state, not the subject's where
        # consent is kept: dedupe could never credit them, so the registry says so now.
        if self.consent_required:
            global_types = sorted(t for t in self.behaviours if CATALOGUE[t].global_key)
            if global_types:
                raise ValueError(
                    f"partner {self.id} requires consent and reports {', '.join(global_types)}"
                    ", whose claims are credited once across people: consent cannot be checked"
                    " for them yet (docs/dedupe.md, Consent); report them through a partner"
                    " without consent_required, or remove them"
                )
        return self

    def signing_secret(self, environ: Mapping[str, str], production: bool) -> bytes | None:
        """The HTTP signing secret; outside production a documented dev secret stands in.
        Production has none for a weak one (access.weak_secret): the partner's
        requests are refused as unsigned rather than checked against a public value."""
        name = self.credentials.hmac_secret_env
        if name and environ.get(name):
            if production and weak_secret(environ[name]):
                return None
            return environ[name].encode()
        return None if production else f"{self.id}{DEV_SECRET_SUFFIX}".encode()

    def rank(self, activity_class: str) -> int:
        """Evidence rank for a class; a class not listed ranks 0 (docs/domain.md)."""
        return self.evidence_rank.get(activity_class, 0)


class PartnerRegistry(BaseModel):
    model_config = ConfigDict(frozen=True)

    partners: tuple[Partner, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> PartnerRegistry:
        ids = [p.id for p in self.partners]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"partner ids listed twice: {', '.join(duplicates)}")
        return self

    def get(self, partner_id: str) -> Partner | None:
        return next((p for p in self.partners if p.id == partner_id), None)

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.partners]


def parse_registry(document: Any) -> PartnerRegistry:
    return PartnerRegistry.model_validate(document)


def load_registry(path: Path) -> PartnerRegistry:
    """Read and validate the operator's YAML (or JSON) file; refuses a bad file at start-up."""
    with path.open(encoding="utf-8") as fh:
        return parse_registry(yaml.safe_load(fh))
