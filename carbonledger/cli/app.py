"""`carbonledger`: run, inspect and exercise the carbon inclusion ledger.

Each module of this package holds one group of commands and registers them here;
they parse, call the floors below (ops, reference, services' adapters, demo,
bench) and format what comes back. Nothing else lives in the CLI.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from carbonledger import __version__
from carbonledger.cli import (
    audit,
    bench,
    chaos,
    dlq,
    kafka,
    ledger,
    load,
    methodologies,
    monitoring,
    reference,
    regenerate,
    registry,
    stack,
    tokens,
)

app = typer.Typer(
    name="carbonledger",
    help="Run, inspect and exercise the carbon inclusion ledger.",
    no_args_is_help=True,
    add_completion=False,
    # A failure prints the plain traceback it always did: no locals (they may hold
    # connection strings) and nothing a log reader would not expect.
    pretty_exceptions_enable=False,
)


def _version(shown: bool) -> None:
    if shown:
        print(f"carbonledger {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Run, inspect and exercise the carbon inclusion ledger."""


for group in (
    stack,
    kafka,
    ledger,
    audit,
    reference,
    methodologies,
    dlq,
    monitoring,
    bench,
    load,
    chaos,
    regenerate,
    registry,
    tokens,
):
    group.register(app)


def main(argv: list[str] | None = None) -> int:
    """The console script: run one command and return its exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv, prog_name="carbonledger")
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        raise  # a message for stderr (sys.exit("...")): Python prints it, exit 1
    return 0
