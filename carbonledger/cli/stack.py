"""The local stack: `up`, `down`, `status`, `reset` and `demo`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from carbonledger.cli.common import JsonFlag, fail, finish, print_json
from carbonledger.contracts.settings import load_settings
from carbonledger.ops import lifecycle

WorkersOption = Annotated[
    int, typer.Option("--workers", help="processes per consumer group", show_default=True)
]


def up(workers: WorkersOption = 1) -> None:
    """Start Kafka, PostgreSQL and every service."""
    try:
        lifecycle.up(load_settings(), workers)
    except lifecycle.StartFailed as failed:
        fail(str(failed), 1)


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
    found = lifecycle.components(load_settings())
    print_json({"ok": all(c.up for c in found), "components": [asdict(c) for c in found]})
    finish(0 if all(c.up for c in found) else 3)


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

    settings = load_settings()
    try:
        code = run(settings, sample or SAMPLE_FILE, keep_running, keep_data)
    except lifecycle.StartFailed as failed:
        fail(f"demo: {failed}", 1)
    except Exception as exc:  # the stack is stopped already (the demo's own finally)
        logs = "\n  ".join(str(p) for p in lifecycle.log_paths(settings))
        fail(f"demo failed: {exc!r}\nlogs:\n  {logs}", 1)
    finish(code)


PANEL = "Local stack"


def register(app: typer.Typer) -> None:
    for command in (up, down, status, demo, reset):
        app.command(rich_help_panel=PANEL)(command)
