"""The batch reference over JSON lines on stdin: `settle` and `quantify`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from carbonledger.contracts.partners import PartnerRegistry, load_registry
from carbonledger.contracts.settings import Settings, load_settings

if TYPE_CHECKING:
    from carbonledger.contracts.methodology import Methodology

PartnersOption = Annotated[
    Path | None,
    typer.Option("--partners", help="partner registry file (default: the settings')"),
]
RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", help="methodology folder (default: the settings')"),
]


def _batch_inputs(
    partners: Path | None, registry: Path | None, settings: Settings
) -> tuple[PartnerRegistry, list[Methodology], Iterator[bytes]]:
    """Partner registry, methodologies (files from the options, else the settings), stdin lines."""
    from carbonledger.contracts.methodology_files import load_methodologies

    partner_registry = load_registry(partners or settings.partners_file)
    methodologies = load_methodologies(registry or settings.methodology_dir)
    lines = (raw for raw in sys.stdin.buffer.read().splitlines() if raw.strip())
    return partner_registry, methodologies, lines


def settle(partners: PartnersOption = None, registry: RegistryOption = None) -> None:
    """Batch reference: partner events (JSON lines) on stdin, the books as JSON."""
    from carbonledger.contracts.envelope import source_of
    from carbonledger.reference.settle import settle as settle_batch

    settings = load_settings()
    partner_registry, methodologies, lines = _batch_inputs(partners, registry, settings)
    result = settle_batch(
        ((source_of(raw), raw) for raw in lines),
        partner_registry,
        methodologies,
        datetime.now(UTC),
        window=settings.dedupe_window,
    )
    print(json.dumps(result.as_json(), indent=2, sort_keys=True))


def quantify(partners: PartnersOption = None, registry: RegistryOption = None) -> None:
    """Quantify partner events (JSON lines) on stdin: one JSON line per event."""
    from carbonledger.reference.offline import quantify_lines

    partner_registry, methodologies, lines = _batch_inputs(partners, registry, load_settings())
    for result in quantify_lines(lines, partner_registry, methodologies, datetime.now(UTC)):
        print(json.dumps(result, ensure_ascii=False))


PANEL = "Methodologies and the batch reference"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(settle)
    app.command(rich_help_panel=PANEL)(quantify)
