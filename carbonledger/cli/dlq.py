"""Dead letters on `behaviour.rejected`: `dlq list|show|replay`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from carbonledger.cli.common import JsonFlag, fail, finish, progress_bar, show_rows
from carbonledger.contracts.settings import load_settings

if TYPE_CHECKING:
    from carbonledger.contracts.records import DeadLetter

dlq_app = typer.Typer(
    help="List, show or replay dead letters (behaviour.rejected).", no_args_is_help=True
)

Ids = Annotated[list[str] | None, typer.Argument(help="dead letter ids")]
Partner = Annotated[str | None, typer.Option("--partner", help="only this partner's")]
Reason = Annotated[str | None, typer.Option("--reason", help="only this reason code")]
Stage = Annotated[
    Literal["ingest", "quantify", "dedupe"] | None,
    typer.Option("--stage", help="only those this stage refused"),
]
All = Annotated[
    bool,
    typer.Option("--all", help="every dead letter selected (replay needs it, ids or a filter)"),
]


def _selected(
    ids: list[str] | None, partner: str | None, reason: str | None, stage: str | None
) -> list[DeadLetter]:
    from carbonledger.ops import dlq

    chosen = dlq.Selection(frozenset(ids or ()), partner, reason, stage)
    return [letter for letter in dlq.dead_letters(load_settings()) if chosen.matches(letter)]


@dlq_app.command("list")
def list_letters(
    ids: Ids = None,
    partner: Partner = None,
    reason: Reason = None,
    stage: Stage = None,
    every: All = False,
    as_json: JsonFlag = False,
) -> None:
    """One line per dead letter: id, time, partner, reason, origin, message."""
    from carbonledger.ops import dlq

    letters = _selected(ids, partner, reason, stage)
    rows = [
        letter.model_dump(mode="json", exclude={"payload_b64", "key_b64"}) for letter in letters
    ]
    for row in rows:
        origin = row.pop("origin")
        row["origin"] = f"{origin['topic']}[{origin['partition']}]@{origin['offset']}"
    columns = ["dead_letter_id", "received_at", "partner", "stage", "reason", "origin", "message"]
    show_rows(rows, [dlq.summary_line(letter) for letter in letters], columns, as_json)
    print(f"{len(letters)} dead letters", file=sys.stderr)


@dlq_app.command()
def show(
    ids: Ids = None,
    partner: Partner = None,
    reason: Reason = None,
    stage: Stage = None,
    every: All = False,
) -> None:
    """The whole letters, payload as text when UTF-8 (exit 1 if none is selected)."""
    from carbonledger.ops import dlq

    letters = _selected(ids, partner, reason, stage)
    for letter in letters:
        print(dlq.details(letter))
    finish(0 if letters else 1)


@dlq_app.command()
def replay(
    ids: Ids = None,
    partner: Partner = None,
    reason: Reason = None,
    stage: Stage = None,
    every: All = False,
) -> None:
    """Send the letters' original bytes back to their origin topics (exit 1 if none)."""
    from carbonledger.ops import dlq

    if not (ids or partner or reason or every):
        fail("replay needs dead letter ids, --partner, --reason or --all", 2)
    letters = _selected(ids, partner, reason, stage)
    with progress_bar("replaying dead letters") as progress:
        sent = dlq.replay(load_settings(), letters, progress=progress)
    print(f"replayed {sent} dead letters to their origin topics")
    finish(0 if letters else 1)


PANEL = "Operations"


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq", rich_help_panel=PANEL)
