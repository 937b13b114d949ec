"""The ledger database: `db migrate` and `employer link`."""

from __future__ import annotations

from typing import Annotated

import typer

from carbonledger.cli.common import fail
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


PANEL = "Ledger"


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db", rich_help_panel=PANEL)
    app.add_typer(employer_app, name="employer", rich_help_panel=PANEL)
