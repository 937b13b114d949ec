"""`carbonledger token`: a development bearer token for the local stack's APIs and
portal (docs/access.md). Refused in production, where tokens come from the scheme's
identity provider."""

from __future__ import annotations

from typing import Annotated

import typer

from carbonledger.cli.common import fail
from carbonledger.contracts.roles import Role

PANEL = "Access"


def token(
    role: Annotated[Role, typer.Option("--role", help="who the token is for")],
    subject: Annotated[
        str | None, typer.Option("--subject", help="person or unit: their subject id")
    ] = None,
    partner: Annotated[str | None, typer.Option("--partner", help="partner: its id")] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="government: its GB/T 2260 region")
    ] = None,
    ttl: Annotated[int, typer.Option("--ttl", min=1, help="seconds until it expires")] = 8 * 3600,
) -> None:
    """Print a bearer token signed with the local development key (exit 2 outside
    development, or when the role's scope is missing)."""
    from pydantic import ValidationError

    from carbonledger.runtime.tokens import Grant, TokenSettings, mint_development_token

    grant = Grant(role, subject=subject, partner=partner, region=region, ttl_seconds=ttl)
    try:
        settings = TokenSettings()
    except ValidationError:  # production without an issuer: no development token either
        fail("development tokens are refused when CARBON_ENVIRONMENT=production", 2)
        return
    try:
        print(mint_development_token(settings, grant))
    except (PermissionError, ValueError) as refused:
        fail(str(refused), 2)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(token)
