"""The carbon asset registry: `registry issue`, `account create`, `transfer`,
`retire`, `show` and `balance` (docs/registry.md). Each prints JSON; a refused
operation exits 2 with the reason on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carbonledger.cli.common import day_option, fail, print_json

if TYPE_CHECKING:
    import psycopg

registry_app = typer.Typer(
    help="The carbon asset registry: issuance, sale, retirement.", no_args_is_help=True
)
account_app = typer.Typer(help="Registry accounts.", no_args_is_help=True)
registry_app.add_typer(account_app, name="account")

REFUSED = 2
REQUEST_HELP = "an id of this request: repeated, the command returns what it did the first time"


@contextmanager
def _connected() -> Iterator[psycopg.Connection]:
    from carbonledger.services.ledger.adapters.migrations import connect_migrated
    from carbonledger.services.ledger.config import LedgerSettings

    conn = connect_migrated(LedgerSettings().pg_conninfo)
    try:
        yield conn
    finally:
        conn.close()


def _run(operation: Callable[[psycopg.Connection], Any]) -> None:
    """Run one registry operation and print its JSON; a refusal exits 2."""
    from carbonledger.services.ledger.domain.registry.holdings import Refused

    with _connected() as conn:
        try:
            result = operation(conn)
        except Refused as why:
            fail(f"refused: {why}", REFUSED)
    print_json(result)


def _period(first: date | None, last: date | None) -> Any:
    from carbonledger.services.ledger.domain.registry.issuance import Period

    if first is None and last is None:
        return None
    if first is None or last is None:
        fail("give both --period-from and --period-to, or neither", REFUSED)
    return Period(first, last)  # type: ignore[arg-type]  # both set past the check


@registry_app.command()
def issue(
    region: Annotated[str, typer.Option("--region", help="six-digit code of the region")],
    methodology: Annotated[str, typer.Option("--methodology", help="methodology id (any version)")],
    first: Annotated[date, day_option("--from", "first behaviour day (China Standard Time)")],
    last: Annotated[date, day_option("--to", "last behaviour day, included")],
    package: Annotated[
        Path, typer.Option("--package", help="the `carbonledger export` folder of the period")
    ],
    verifier: Annotated[str, typer.Option("--verifier", help="who verified the package")],
    unit_type: Annotated[
        str | None, typer.Option("--unit-type", help="the scheme's unit type (default: setting)")
    ] = None,
    manifest_hash: Annotated[
        str | None,
        typer.Option(
            "--manifest-hash",
            help="SHA-256 of manifest.json as the verifier signed it (default: the package's)",
        ),
    ] = None,
    verified_at: Annotated[
        datetime | None,
        typer.Option(
            "--verified-at",
            parser=datetime.fromisoformat,
            metavar="YYYY-MM-DDTHH:MM[+08:00]",
            help="when the verifier signed off (default: now; no zone: China Standard Time)",
        ),
    ] = None,
) -> None:
    """Issue a verified period's units as one serial block (exit 2 if refused)."""
    from carbonledger.services.ledger import registry_service
    from carbonledger.services.ledger.config import LedgerSettings
    from carbonledger.services.ledger.domain.registry.issuance import Period

    kind = unit_type or LedgerSettings().registry_unit_type
    _run(
        lambda conn: registry_service.issue(
            conn,
            region,
            methodology,
            Period(first, last),
            package,
            verifier,
            manifest_hash,
            kind,
            verified_at,
        )
    )


@account_app.command("create")
def create_account(
    account: Annotated[str, typer.Option("--id", help="account id, e.g. tianping-insurance")],
    name: Annotated[str, typer.Option("--name", help="the organisation's registered name")],
    kind: Annotated[str, typer.Option("--kind", help="buyer or holding")] = "buyer",
    request: Annotated[str | None, typer.Option("--request-id", help=REQUEST_HELP)] = None,
) -> None:
    """Open a buyer account (or a region's holding account, holding-<region>)."""
    from carbonledger.services.ledger import registry_service

    _run(lambda conn: registry_service.open_account(conn, account, name, kind, request))


@registry_app.command()
def transfer(
    source: Annotated[str, typer.Option("--from", help="the account the units leave")],
    target: Annotated[str, typer.Option("--to", help="the account they go to")],
    units: Annotated[int, typer.Option("--units", help="how many units (lowest serials first)")],
    price_fen: Annotated[int, typer.Option("--price-fen", help="price per unit, in fen")],
    venue: Annotated[str, typer.Option("--venue", help="e.g. 广州碳排放权交易所")],
    on: Annotated[
        date | None,
        typer.Option("--date", parser=date.fromisoformat, help="sale date (today in China)"),
    ] = None,
    request: Annotated[str | None, typer.Option("--request-id", help=REQUEST_HELP)] = None,
) -> None:
    """Transfer (sell) units; a sale from a holding account shares its proceeds."""
    from carbonledger.services.ledger import registry_service

    _run(
        lambda conn: registry_service.transfer(
            conn, source, target, units, price_fen, venue, on, request
        )
    )


@registry_app.command()
def retire(
    account: Annotated[str, typer.Option("--account", help="the holder retiring units")],
    units: Annotated[int, typer.Option("--units", help="how many units (lowest serials first)")],
    beneficiary: Annotated[str, typer.Option("--beneficiary", help="on whose behalf")],
    purpose: Annotated[str, typer.Option("--purpose", help="what the retirement offsets")],
    period_from: Annotated[
        date | None,
        typer.Option("--period-from", parser=date.fromisoformat, help="emissions period start"),
    ] = None,
    period_to: Annotated[
        date | None,
        typer.Option("--period-to", parser=date.fromisoformat, help="emissions period end"),
    ] = None,
    serial: Annotated[
        str | None,
        typer.Option("--serial", help="retire the first UNITS of this serial block instead"),
    ] = None,
    request: Annotated[str | None, typer.Option("--request-id", help=REQUEST_HELP)] = None,
) -> None:
    """Retire units for good (exit 2 if refused, e.g. a serial already retired)."""
    from carbonledger.services.ledger import registry_service

    emissions = _period(period_from, period_to)
    _run(
        lambda conn: registry_service.retire(
            conn, account, units, beneficiary, purpose, emissions, serial, request
        )
    )


@registry_app.command()
def show(
    serial: Annotated[str, typer.Argument(help="a serial block or one unit's serial")],
) -> None:
    """A serial's lineage: its issuance, every transaction that moved it, where it is now."""
    from carbonledger.services.ledger.adapters import registry_views
    from carbonledger.services.ledger.domain.registry.serials import Serial

    try:
        parsed = Serial.parse(serial)
    except ValueError as why:
        fail(str(why), REFUSED)
    with _connected() as conn:
        found = registry_views.lineage(conn, parsed)
    if found is None:
        fail(f"no unit of {serial} was ever issued", 1)
    print_json(found)


@registry_app.command()
def balance(account: Annotated[str, typer.Argument(help="a registry account id")]) -> None:
    """An account's units held and retired, as serial blocks."""
    from carbonledger.services.ledger.adapters import registry_views

    with _connected() as conn:
        found = registry_views.balance(conn, account)
    if found is None:
        fail(f"no registry account {account}", 1)
    print_json(found)


PANEL = "Registry"


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry", rich_help_panel=PANEL)
