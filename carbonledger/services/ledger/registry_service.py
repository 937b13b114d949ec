"""The registry's issuance use case: an export package checked as a verifier would,
and the verifier's sign-off bound to it, before the registry issues.

The package must be `carbonledger export`'s of exactly the issuance's region and
period, pass `verify-export` (files, chains, claims, totals), and be the package the
verifier signed: the SHA-256 of its manifest.json is the hash they name (when the
operator names none, the package's own hash is recorded as the one signed). The
methodology's net in the package is what the issuance must find in the books (if the
books moved since the export, export and verify again).

It stands beside the use cases in service.py but wires two adapters (the audit's
package check and the registry), so the command line and tests call one function.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from carbonledger.services.ledger.adapters import audit
from carbonledger.services.ledger.adapters.registry import Registry, Verification
from carbonledger.services.ledger.domain.registry.holdings import Refused
from carbonledger.services.ledger.domain.registry.issuance import Period

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
) -> Verification:
    """The verification an issuance records; Refused naming what does not hold. With
    no `signed_hash` the package's manifest hash is the one recorded as signed."""
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
    return Verification(verifier, datetime.now(UTC), signed_hash, package_net(package, methodology))


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
) -> dict[str, Any]:
    """Check the package and the sign-off, then issue (Refused if either fails)."""
    if (why := period.problem()) is not None:
        raise Refused(why)
    verification = checked_package(package, region, methodology, period, verifier, signed_hash)
    return Registry(conn).issue(region, methodology, period, verification, unit_type)
