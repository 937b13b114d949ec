"""Regenerating bundled files: `schemas` (docs/contract) and `sample` (partner traffic)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def schemas() -> None:
    """Regenerate docs/contract (JSON Schemas, AsyncAPI, OpenAPI)."""
    from carbonledger.ops.contract_docs import write

    for path in write():
        print(f"wrote {path}")


def sample(
    out: Annotated[
        Path | None, typer.Option("--out", help="file to write (default: the bundled sample)")
    ] = None,
) -> None:
    """Regenerate the bundled sample of partner traffic (deterministic)."""
    from carbonledger.demo.sample import write_sample

    print(write_sample(out) if out else write_sample())


PANEL = "Development"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(schemas)
    app.command(rich_help_panel=PANEL)(sample)
