"""The local stack: `up`, `down`, `status`, `reset` and `demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from carbonledger.cli.common import JsonFlag, captured_stdout, finish, print_json
from carbonledger.contracts.settings import load_settings
from carbonledger.ops import lifecycle

WorkersOption = Annotated[
    int, typer.Option("--workers", help="processes per consumer group", show_default=True)
]


def up(workers: WorkersOption = 1) -> None:
    """Start Kafka, PostgreSQL and every service."""
    lifecycle.up(load_settings(), workers)


def down(
    keep_infra: Annotated[
        bool, typer.Option("--keep-infra", help="leave Kafka and PostgreSQL running")
    ] = False,
) -> None:
    """Stop what `up` started."""
    lifecycle.down(load_settings(), keep_infra)


def status(as_json: JsonFlag = False) -> None:
    """Show each component and whether it is up (exit 0 only if all are, else 3)."""
    if not as_json:
        finish(lifecycle.status(load_settings()))
        return
    with captured_stdout() as report:
        code = lifecycle.status(load_settings())
    components = [_component(line) for line in report.getvalue().splitlines() if line.strip()]
    print_json({"ok": code == 0, "components": components})
    finish(code)


def _component(line: str) -> dict[str, Any]:
    """One line of the status report, `name: state (detail)`, as a record."""
    name, _, rest = line.partition(": ")
    state, _, detail = rest.partition(" (")
    return {"name": name, "state": state, "detail": detail.removesuffix(")") or None}


def reset() -> None:
    """Stop everything and delete the local stack's data."""
    lifecycle.reset(load_settings())


def demo(
    sample: Annotated[
        Path | None,
        typer.Option("--sample", help="partner traffic to run (default: the bundled sample)"),
    ] = None,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="leave the stack running afterwards")
    ] = False,
    keep_data: Annotated[
        bool,
        typer.Option("--keep-data", help="run on the existing data instead of a fresh stack"),
    ] = False,
) -> None:
    """Run the pipeline on the bundled sample and print the ledger."""
    from carbonledger.demo.run import run
    from carbonledger.demo.sample import SAMPLE_FILE

    finish(run(load_settings(), sample or SAMPLE_FILE, keep_running, keep_data))


PANEL = "Local stack"


def register(app: typer.Typer) -> None:
    for command in (up, down, status, demo, reset):
        app.command(rich_help_panel=PANEL)(command)
