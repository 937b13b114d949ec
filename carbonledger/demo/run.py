"""`carbonledger demo`: the whole pipeline on the bundled sample, checked against `settle`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.exact import mg_to_display
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import FAMILY_HEAD
from carbonledger.ops import stack
from carbonledger.ops.progress import LEDGER_GROUP, LagProbe
from carbonledger.ops.publish import publish, route
from carbonledger.reference.reconcile import expected_from, ledger_matches
from carbonledger.reference.settle import Settlement
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.domain.family import FamilyView, Membership


def wait_settled(settings: Settings, expected: Settlement, timeout: float = 180) -> list[str]:
    """Wait until every stage has caught up and the books equal the expectation."""
    deadline = time.monotonic() + timeout
    problems = ["not checked"]
    with (
        psycopg.connect(settings.pg_conninfo, autocommit=True) as conn,
        LagProbe(settings) as probe,
    ):
        while time.monotonic() < deadline:
            lag = probe.pipeline(views.writer_offsets(conn, LEDGER_GROUP))
            problems = ledger_matches(conn, expected)
            if not any(lag.values()) and not problems:
                return []
            time.sleep(1)
    return problems


def summary(settings: Settings, expected: Settlement, sent: int, seconds: float) -> str:
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
        totals = views.totals(conn)
        postings = views.posting_count(conn)
        government = views.balances(conn, "government")
        enterprise = views.balances(conn, "enterprise")
        people = len(views.balances(conn, "personal"))
        kinds = views.personal_by_kind(conn)
        family = views.family_view(conn, FAMILY_HEAD)
    e = expected.as_json()
    units, unit_mg = kinds.get("unit", (0, 0))
    lines = [
        "",
        "Carbon inclusion ledger — summary of the demo run",
        f"  records published          {sent}  (in {seconds:.1f} s, end to end)",
        f"  credited events            {e['credited']}  (a cap reduced {e['capped']})",
        f"  duplicates of another      {e['duplicates']}  (same activity, another partner)",
        f"  replays without effect     {e['replays']}",
        f"  not credited               {e['not_credited']}  (no methodology, or no consent:"
        f" {e['no_consent']})",
        f"  consent records            {e['consent_records']}  (grants and withdrawals,"
        " in the consent history)",
        f"  engagement events          {sum(expected.engagements.values())}  (never in a book)",
        f"  dead-lettered              {e['rejected']}  {dict(expected.rejections)}",
        f"  postings in PostgreSQL     {postings}",
        "",
        "  book          total (kg CO2)",
    ]
    lines += [f"  {book:<12}  {mg_to_display(total):>16}" for book, total in totals.items()]
    lines += [
        "",
        f"  personal accounts: {people}: {people - units} people,"
        f" {units} unit{'' if units == 1 else 's'} (organisations)"
        f" ({mg_to_display(unit_mg)} kg CO2 of the personal book is units')",
        "",
        "  enterprise book (partner)      kg CO2",
    ]
    lines += [f"  {a:<28} {mg_to_display(v):>12}" for a, v in sorted(enterprise.items())]
    lines += ["", "  government book (region)       kg CO2"]
    lines += [f"  {a:<28} {mg_to_display(v):>12}" for a, v in sorted(government.items())]
    return "\n".join(lines + _family_lines(family))


def _since(membership: Membership) -> str:
    """When the member's first link took effect, in China Standard Time."""
    first = membership.intervals[0].start if membership.intervals else None
    return first.astimezone(CST).isoformat() if first is not None else "—"


def _family_lines(family: FamilyView | None) -> list[str]:
    """The sample's family account (a view: never added to any book's total)."""
    if family is None:
        return ["", "  family account: none reported"]
    lines = [
        "",
        f"  family account of {family.head[:12]}… (1+{len(family.members)}, a view)"
        f"  {mg_to_display(family.total_mg)} kg CO2",
        f"    head's own                 {mg_to_display(family.head_own_mg):>12}",
    ]
    lines += [
        f"    member {m.membership.member[:12]}…  {mg_to_display(m.net_mg):>12}"
        f"  since {_since(m.membership)}"
        for m in family.members
    ]
    return lines


def portal_lines(settings: Settings, still_up: bool) -> str:
    """Where to see the books in a browser, and a ready development login (docs/portal.md)."""
    base = f"http://127.0.0.1:{stack.Processes(settings).port('ledger-api')}"
    login = f"{base}/portal/login?role=government&region=000000"
    lines = [
        "",
        f"Portal (门户): {base}/portal",
        f"  development login, a national official: {login}",
        "  or a bearer token: carbonledger token --role government --region 000000",
        f"  the API's documentation: {base}/v1/docs",
    ]
    if not still_up:
        lines.append(
            "  (the stack is down again: run `carbonledger demo --keep-running` to browse)"
        )
    return "\n".join(lines)


def run(settings: Settings, sample: Path, keep_running: bool, keep_data: bool = False) -> int:
    """The sample through a fresh stack (the books must equal `settle` on the sample alone:
    earlier data, or a dedupe watermark from other traffic, would change them)."""
    from carbonledger.ops.lifecycle import down, reset, up  # the same steps as the commands

    if not keep_data:
        reset(settings)
    already_up = bool(stack.Processes(settings).running())
    up(settings, workers=1)
    try:
        registry = load_registry(settings.partners_file)
        fallback = registry.ids[0]
        records = [(route(raw, fallback), raw) for raw in sample.read_bytes().splitlines() if raw]
        expected = expected_from(settings, records)
        started = time.monotonic()
        sent = publish(settings, records)
        problems = wait_settled(settings, expected)
        print(summary(settings, expected, sent, time.monotonic() - started))
        if problems:
            print(
                "\nFAILED: the ledger does not equal what the sample implies:",
                *problems,
                sep="\n  ",
            )
            return 1
        print(
            "\nOK: every book equals what `carbonledger settle` computes from the sample;"
            " the three book totals are equal."
        )
        print(portal_lines(settings, still_up=keep_running or already_up))
        return 0
    finally:
        if not (keep_running or already_up):
            down(settings, keep_infra=False)
        sys.stdout.flush()
