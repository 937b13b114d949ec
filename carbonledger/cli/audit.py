"""Auditing the books: `verify`, `export` and `verify-export`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from carbonledger.cli.common import day_option, finish, progress_bar
from carbonledger.contracts.settings import load_settings

if TYPE_CHECKING:
    from carbonledger.services.ledger.adapters.audit import Report


def _account(text: str) -> tuple[str, str]:
    book, colon, name = text.partition(":")
    if not colon:
        raise typer.BadParameter(f"{text!r} is not BOOK:ACCOUNT", param_hint="--account")
    return book, name


def verify(
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            metavar="BOOK:ACCOUNT",
            help="one account, as BOOK:ACCOUNT (e.g. government:440305)",
        ),
    ] = None,
) -> None:
    """Recompute the ledger's hash chains and check the books (exit 1 on any break)."""
    import psycopg

    from carbonledger.services.ledger.adapters import audit

    one = _account(account) if account else None
    with (
        psycopg.connect(load_settings().pg_conninfo, autocommit=True) as conn,
        progress_bar("verifying accounts") as progress,
    ):
        report = audit.verify(conn, one, progress=progress)
    _print_report(report)


def export(
    region: Annotated[str, typer.Option("--region", help="six-digit code; 000000 for national")],
    first: Annotated[date, day_option("--from", "first day of the period (China Standard Time)")],
    last: Annotated[date, day_option("--to", "last day of the period, included")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="folder (default: export-<region>-<from>-<to>)"),
    ] = None,
) -> None:
    """Write a verification package for a region and period."""
    import psycopg

    from carbonledger.contracts.regions import load_regions
    from carbonledger.services.ledger.adapters import audit

    settings = load_settings()
    folder = out or Path(f"export-{region}-{first}-{last}")
    with (
        psycopg.connect(settings.pg_conninfo, autocommit=True) as conn,
        progress_bar("exporting accounts") as progress,
    ):
        summary = audit.export(
            conn,
            load_regions(),
            settings.methodology_dir,
            region,
            first,
            last,
            folder,
            progress=progress,
        )
    print(json.dumps({"folder": str(folder), **summary}, indent=2, ensure_ascii=False))


def verify_export(
    folder: Annotated[Path, typer.Argument(help="the package folder `export` wrote")],
) -> None:
    """Check a verification package offline (exit 1 on any break or changed file)."""
    from carbonledger.services.ledger.adapters import audit

    _print_report(audit.verify_export(folder))


def _print_report(report: Report) -> None:
    print(json.dumps(report.as_json(), indent=2, default=str))
    finish(0 if report.ok else 1)


PANEL = "Ledger"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(verify)
    app.command(rich_help_panel=PANEL)(export)
    app.command("verify-export", rich_help_panel=PANEL)(verify_export)
