"""`carbonledger recompute`: correcting claims for a period after a methodology changes.

Reads what the ledger holds for every event quantified under the methodology in
the period, quantifies each again under the registry as it is now, and publishes
a correcting claim (superseding the earlier one) to `reduction.claims` for each
event whose methodology version or amount changes. Dedupe applies them as
compensating decisions; running it twice publishes claims dedupe already has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from carbonledger.contracts import topics
from carbonledger.contracts.groups import dedupe_group
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.records import ReductionClaim
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.producers import producer
from carbonledger.services.ledger.adapters import views
from carbonledger.services.quantify.domain.recompute import Standing, correcting_claim


def recompute(
    settings: Settings,
    methodology_id: str,
    first: date,
    last: date,
    registry: Path | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int | None], None] | None = None,  # (claims examined, None)
) -> dict[str, Any]:
    methodologies = load_methodologies(registry or settings.methodology_dir)
    now = datetime.now(UTC)
    counts: Counter[str] = Counter()
    change_mg = 0
    corrections: list[ReductionClaim] = []
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
        for doc, net, credit in views.claims_under(conn, methodology_id, first, last):
            counts["examined"] += 1
            if progress:
                progress(counts["examined"], None)
            claim = ReductionClaim.model_validate(doc)
            if not claim.data:  # recorded before claims carried their inputs
                counts["skipped_without_inputs"] += 1
                continue
            fixed = correcting_claim(claim, Standing(net, credit), methodologies, now)
            if fixed is None:
                counts["unchanged"] += 1
                continue
            counts["corrections"] += 1
            change_mg += fixed.reduction_mg - claim.reduction_mg
            corrections.append(fixed)
    if corrections and not dry_run:
        _publish(settings, corrections)
    return {
        "methodology": methodology_id,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "published": 0 if dry_run else len(corrections),
        "claimed_change_mg": change_mg,
        **{
            k: counts[k] for k in ("examined", "unchanged", "corrections", "skipped_without_inputs")
        },
    }


def _publish(settings: Settings, claims: list[ReductionClaim]) -> None:
    p = producer(settings)
    try:
        for claim in claims:
            # Where the claim it supersedes went: its dedupe group's partition.
            p.send(topics.CLAIMS, key=dedupe_group(claim).encode(), value=claim.to_bytes())
        p.flush(timeout=60)
    finally:
        p.close()
