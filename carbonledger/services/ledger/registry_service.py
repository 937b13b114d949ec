"""The registry's use cases: issuance (an export package checked as a verifier
would, and the verifier's sign-off bound to it, before the registry issues),
account opening, transfer and retirement, each a function the command line and
tests call.

The package must be `carbonledger export`'s of exactly the issuance's region and
period, pass `verify-export` (files, chains, claims, totals), and be the package the
verifier signed: the SHA-256 of its manifest.json is the hash they name (when the
operator names none, the package's own hash is recorded as the one signed). The
methodology's net in the package is what the issuance must find in the books (if the
books moved since the export, export and verify again).

They stand beside the use cases in service.py; issuance wires two adapters (the
audit's package check and the registry). A `request` id makes a command
idempotent: its transaction id is derived from it, and a repeat returns what the
first run did.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from carbonledger.contracts.calendar import CST
from carbonledger.services.ledger.adapters import audit
from carbonledger.services.ledger.adapters.registry import Registry, Verification
from carbonledger.services.ledger.domain.registry.holdings import Refused
from carbonledger.services.ledger.domain.registry.issuance import Period
from carbonledger.services.ledger.domain.registry.serials import Serial

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def manifest_sha256(package: Path) -> str:
    """The hash a verifier signs: SHA-256 (hex) of the package's manifest.json bytes."""
    return hashlib.sha256((package / "manifest.json").read_bytes()).hexdigest()


def checked_package(
    package: Path,
    region: str,
    methodology: str,
    period: Period,
    verifier: str,
    signed_hash: str | None,
    verified_at: datetime | None = None,
) -> Verification:
    """The verification an issuance records; Refused naming what does not hold. With
    no `signed_hash` the package's manifest hash is the one recorded as signed; with
    no `verified_at` the sign-off is now (a time without a zone is China's)."""
    signed_at = sign_off_time(verified_at)
    if not verifier.strip():
        raise Refused("an issuance needs the verifier's name")
    if signed_hash is not None and not SHA256.match(signed_hash):
        raise Refused("the manifest hash is 64 lowercase hex characters (SHA-256)")
    if not (package / "manifest.json").is_file():
        raise Refused(f"{package} is not an export package (no manifest.json)")
    if signed_hash is None:
        signed_hash = manifest_sha256(package)
    elif manifest_sha256(package) != signed_hash:
        raise Refused(
            f"the package's manifest hash is {manifest_sha256(package)}, not the {signed_hash}"
            f" {verifier} signed"
        )
    report = audit.verify_export(package)
    if not report.ok:
        problems = [*report.problems, *(f"{b.account}: {b.problem}" for b in report.breaks)]
        raise Refused(f"the package does not verify: {'; '.join(problems[:5])}")
    summary = json.loads((package / "summary.json").read_text("utf-8"))
    asked = {"region": region, "from": str(period.first), "to": str(period.last)}
    found = {k: summary.get(k) for k in asked}
    if found != asked:
        raise Refused(f"the package covers {found}, not {asked}")
    return Verification(verifier, signed_at, signed_hash, package_net(package, methodology))


def sign_off_time(verified_at: datetime | None) -> datetime:
    """When the verifier signed: now by default; not in the future."""
    now = datetime.now(UTC)
    if verified_at is None:
        return now
    if verified_at.tzinfo is None:
        verified_at = verified_at.replace(tzinfo=CST)
    if verified_at > now:
        raise Refused(f"the verifier's sign-off ({verified_at.isoformat()}) is in the future")
    return verified_at


def package_net(package: Path, methodology: str) -> int:
    """The methodology's (any version) net in the package's period postings."""
    total = 0
    with (package / "postings.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            entry = json.loads(line)
            if entry["in_period"] and entry.get("methodology_id") == methodology:
                total += int(entry["amount_mg"])
    return total


def issue(
    conn: psycopg.Connection,
    region: str,
    methodology: str,
    period: Period,
    package: Path,
    verifier: str,
    signed_hash: str | None,
    unit_type: str,
    verified_at: datetime | None = None,
) -> dict[str, Any]:
    """Check the package and the sign-off, then issue (Refused if either fails)."""
    if (why := period.problem()) is not None:
        raise Refused(why)
    verification = checked_package(
        package, region, methodology, period, verifier, signed_hash, verified_at
    )
    return Registry(conn).issue(region, methodology, period, verification, unit_type)


def open_account(
    conn: psycopg.Connection, account: str, name: str, kind: str, request: str | None = None
) -> dict[str, Any]:
    """Open a buyer account (or a region's holding account)."""
    return Registry(conn).open_account(account, name, kind, request)


def transfer(
    conn: psycopg.Connection,
    source: str,
    target: str,
    units: int,
    price_fen: int,
    venue: str,
    on: date | None = None,
    request: str | None = None,
) -> dict[str, Any]:
    """Transfer (sell) units, lowest serials first; the sale date is today in China
    unless given."""
    day = on or datetime.now(CST).date()
    return Registry(conn).transfer(source, target, units, price_fen, venue, day, request)


def retire(
    conn: psycopg.Connection,
    account: str,
    units: int,
    beneficiary: str,
    purpose: str,
    emissions: Period | None = None,
    serial: str | None = None,
    request: str | None = None,
) -> dict[str, Any]:
    """Retire units for good; Refused for a serial not well written or retired already."""
    block = None
    if serial is not None:
        try:
            block = Serial.parse(serial)
        except ValueError as why:
            raise Refused(str(why)) from None
    return Registry(conn).retire(account, units, beneficiary, purpose, emissions, block, request)
