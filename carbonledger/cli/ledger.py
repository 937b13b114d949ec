"""The ledger database: `db migrate`, `employer link`, `family link` and `family unlink`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from carbonledger.cli.common import fail, print_json
from carbonledger.contracts.settings import load_settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
employer_app = typer.Typer(
    help="Link people to an employer account (a personal view).", no_args_is_help=True
)


@db_app.command()
def migrate() -> None:
    """Apply the schema migrations not applied yet."""
    from carbonledger.services.ledger.adapters.migrations import migrate as apply

    print("applied:", ", ".join(apply(load_settings().pg_conninfo)) or "nothing (up to date)")


@employer_app.command()
def link(
    employer: Annotated[str, typer.Argument(help="the employer's enterprise account")],
    subjects: Annotated[list[str], typer.Argument(help="subject ids (64 hex characters)")],
) -> None:
    """Link these people to the employer (exit 2 if any is not a subject id)."""
    import psycopg

    from carbonledger.contracts.envelope import SUBJECT_PATTERN
    from carbonledger.services.ledger.adapters.books import Books

    bad = [s for s in subjects if not SUBJECT_PATTERN.match(s)]
    if bad:
        fail(f"not subject ids: {', '.join(bad)}", 2)
    with psycopg.connect(load_settings().pg_conninfo, autocommit=True) as conn:
        print(f"linked {Books(conn).link_employer(employer, subjects)} to {employer}")


family_app = typer.Typer(
    help="Link and unlink family accounts (1+N), both sides' acceptance at once.",
    no_args_is_help=True,
)
Head = Annotated[str, typer.Argument(help="the family head's subject id (64 hex characters)")]
Member = Annotated[str, typer.Argument(help="the member's subject id (64 hex characters)")]
At = Annotated[
    str | None,
    typer.Option("--at", help="when, ISO 8601 with offset (default now)", metavar="ISO"),
]
Evidence = Annotated[
    str | None, typer.Option("--evidence", help="the record of both sides' acceptance")
]


@family_app.command("link")
def family_link(head: Head, member: Member, at: At = None, evidence: Evidence = None) -> None:
    """Record both sides' family.linked (partner `operator`) and print the pair as JSON.
    Exit 2 on a bad subject or time. The same command twice records once."""
    _family("linked", head, member, at, evidence)


@family_app.command("unlink")
def family_unlink(head: Head, member: Member, at: At = None, evidence: Evidence = None) -> None:
    """Record both sides' family.unlinked (partner `operator`) and print the pair as JSON."""
    _family("unlinked", head, member, at, evidence)


def _family(kind: str, head: str, member: str, at: str | None, evidence: str | None) -> None:
    from carbonledger.contracts.accounts import family_pair_fault
    from carbonledger.services.ledger.adapters.books import Books
    from carbonledger.services.ledger.adapters.migrations import connect_migrated
    from carbonledger.services.ledger.service import operator_family

    fault = family_pair_fault(head, member, head)
    if fault is not None:
        fail(f"not a head and a member: {fault}", 2)
    moment = _moment(at)
    with connect_migrated(load_settings().pg_conninfo) as conn:
        change = (head, member)
        recorded, pair = operator_family(Books(conn), kind, change, moment, evidence)
    shown: dict[str, Any] = {"type": f"family.{kind}", "head": head, "member": member}
    shown |= {"at": moment, "recorded": recorded, "in_force": bool(pair and pair.in_force)}
    if pair is not None:
        shown["intervals"] = [{"from": i.start, "to": i.end} for i in pair.intervals]
        shown["refused"] = [{"at": r.at, "reason": r.reason} for r in pair.refused]
        shown["awaiting"] = pair.awaiting
    print_json(shown)


def _moment(at: str | None) -> datetime | None:
    if at is None:
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        fail(f"--at {at!r} is not an ISO 8601 time with an offset", 2)
    return moment


PANEL = "Ledger"


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db", rich_help_panel=PANEL)
    app.add_typer(employer_app, name="employer", rich_help_panel=PANEL)
    app.add_typer(family_app, name="family", rich_help_panel=PANEL)
