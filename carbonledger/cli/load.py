"""`load api|gateway`: bounded load against the running HTTP services, measured."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from carbonledger.cli.common import fail, finish, print_json
from carbonledger.contracts.settings import load_settings
from carbonledger.ops import stack

load_app = typer.Typer(
    help="Bounded load against the ledger API and the HTTP gateway.", no_args_is_help=True
)


@load_app.command()
def api(
    clients: Annotated[int, typer.Option("--clients", help="concurrent clients")] = 200,
    seconds: Annotated[float, typer.Option("--seconds", help="how long")] = 30.0,
    timeout: Annotated[float, typer.Option("--timeout", help="per request, seconds")] = 10.0,
    accounts: Annotated[
        int, typer.Option("--accounts", help="also read this many accounts' ledgers")
    ] = 20,
) -> None:
    """N clients read the ledger API for S seconds (exit 1 on any timeout or 5xx)."""
    import psycopg

    from carbonledger.bench import api_load
    from carbonledger.services.ledger.adapters import views

    settings = load_settings()
    port = stack.Processes(settings).port("ledger-api")
    paths = list(api_load.DEFAULT_PATHS)
    if accounts:
        with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
            paths += api_load.account_paths(
                views.accounts(conn, "personal")[:accounts],
                views.accounts(conn, "enterprise")[:accounts],
            )
    load = api_load.ApiLoad(
        f"http://127.0.0.1:{port}",
        clients=clients,
        seconds=seconds,
        timeout=timeout,
        paths=paths,
        token=auditor_token(),
    )
    report = api_load.drive_api(load)
    print_json(report.summary())
    finish(1 if report.timeouts or report.server_errors or report.errors else 0)


def auditor_token() -> str:
    """The local stack's development token reading everything (the load reads as an auditor)."""
    from carbonledger.contracts.roles import Role
    from carbonledger.runtime.tokens import Grant, TokenSettings, mint_development_token

    return mint_development_token(TokenSettings(), Grant(Role.AUDITOR))


@load_app.command()
def gateway(
    bodies: Annotated[int, typer.Option("--bodies", help="concurrent oversized bodies")] = 4,
    megabytes: Annotated[int, typer.Option("--megabytes", help="size of each body")] = 200,
    max_rss: Annotated[
        float, typer.Option("--max-rss", help="exit 1 if the gateway's RSS passes this (MB)")
    ] = 150.0,
) -> None:
    """K unauthenticated oversized bodies at once; the gateway's peak RSS while it refuses."""
    from carbonledger.bench import api_load

    settings = load_settings()
    processes = stack.Processes(settings)
    pid = processes.pid("gateway")
    if pid is None:
        fail("the gateway is not running (carbonledger up)", 2)
        return
    url = f"http://127.0.0.1:{processes.port('gateway')}/v1/events"
    report = api_load.refuse_bodies(api_load.BodyLoad(url, pid, bodies, megabytes))
    print(json.dumps(report.summary(), indent=2))
    finish(1 if report.rss_peak_mb > max_rss else 0)


PANEL = "Development"


def register(app: typer.Typer) -> None:
    app.add_typer(load_app, name="load", rich_help_panel=PANEL)
